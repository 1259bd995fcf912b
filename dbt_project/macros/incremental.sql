{#-
    How the full-history models stay incremental (README, "What a build recomputes").

    Each incremental model recomputes whole date partitions and overwrites them (`insert_overwrite`, on
    Delta and Parquet alike). Its rows carry `updated_at`, when a build wrote them. int_events_sessionized
    also keeps each event's `loaded_at`: it recomputes every (user, sessionId) with an event staging loaded
    after its own newest `loaded_at`. The models below it recompute from the rows their parent wrote after
    their own newest `updated_at`, which are every event of every pair that changed. A table holds all
    its parent wrote up to its newest row, so a build killed half-way leaves the later models behind, and
    the next build catches them up. Data tests check the rows this build wrote (`updated_at >= __this_run__`).

    A model is rebuilt in full, as with `--full-refresh`, when its definition changed since its table
    was built: its SQL, the macros and vars it uses, or the definition of anything upstream (a seed's
    file, a parent model's definition). The definition's fingerprint is kept in the table's properties.
-#}

{#- dbt's own should_full_refresh, plus: an incremental model whose definition changed is rebuilt in full.
    dbt's incremental materialization and is_incremental() both ask this macro. -#}
{% macro should_full_refresh() -%}
    {%- set full_refresh = config.get('full_refresh') -%}
    {%- if full_refresh is none -%}
        {%- set full_refresh = flags.FULL_REFRESH -%}
    {%- endif -%}
    {%- if not full_refresh and execute and model.config.materialized == 'incremental' -%}
        {%- set full_refresh = definition_changed() -%}
    {%- endif -%}
    {{ return(full_refresh) }}
{%- endmacro %}

{% macro definition_changed() -%}
    {%- set relation = load_cached_relation(this) -%}
    {%- if relation is none -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set changed = stored_definition(relation) != definition_fingerprint(model) -%}
    {%- if changed and model.compiled -%}
        {#- Asked again by the materialization, once the SQL is compiled: say it once. -#}
        {{ log(this.identifier ~ ": its definition changed since the table was built (its SQL, a var, a macro or "
               ~ "something upstream): rebuilding it in full", info=true) }}
    {%- endif -%}
    {{ return(changed) }}
{%- endmacro %}

{#- dbt-spark's table properties, plus the definition an incremental model's table is created from: it changes
    only when the table is created again (a full build), which is when it must. -#}
{% macro spark__tblproperties_clause() -%}
    {%- set properties = config.get('tblproperties') or {} -%}
    {%- if execute and model.config.materialized == 'incremental' -%}
        {%- set properties = dict(properties, **{'sparkify.definition': definition_fingerprint(model)}) -%}
    {%- endif -%}
    {%- if properties %}
        tblproperties (
            {%- for name, value in properties.items() %}
                '{{ name }}' = '{{ value }}'{{ ',' if not loop.last }}
            {%- endfor %}
        )
    {%- endif %}
{%- endmacro %}

{% macro stored_definition(relation) -%}
    {%- for row in run_query("show tblproperties " ~ relation).rows if row[0] == 'sparkify.definition' -%}
        {{ return(row[1]) }}
    {%- endfor -%}
    {{ return(none) }}
{%- endmacro %}

{#- The fingerprint of a node's definition: its SQL, the project macros it calls (found in the text, so that both
    branches of an incremental model count, whichever one ran), theirs, the values of the vars they name, and
    its parents' fingerprints (a seed: its file's checksum). Data never enters it. -#}
{% macro definition_fingerprint(node, memo=none) -%}
    {%- if node.resource_type == 'seed' -%}
        {{ return('seed:' ~ node.checksum.checksum) }}
    {%- elif node.resource_type != 'model' -%}
        {{ return(node.resource_type) }}
    {%- endif -%}
    {#- Each node's fingerprint and the project's macros, once per call from outside. -#}
    {%- if memo is none -%}
        {%- set memo = {'nodes': {}, 'macros': {}} -%}
        {%- for name, value in context.items()
                if value.macro is defined and value.macro.package_name == project_name -%}
            {%- do memo.macros.update({name: value.macro.macro_sql}) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if node.unique_id in memo.nodes -%}
        {{ return(memo.nodes[node.unique_id]) }}
    {%- endif -%}
    {%- set code = [node.raw_code] -%}
    {%- set called = [] -%}
    {#- A worklist: each macro found adds its own code to search (at most as many rounds as there are macros). -#}
    {%- for round in range(memo.macros | length + 1) if round < code | length -%}
        {%- for name in modules.re.findall('\\b(\\w+)\\s*\\(', code[round]) | unique | sort
                if name in memo.macros and name not in called -%}
            {%- do called.append(name) -%}
            {%- do code.append(memo.macros[name]) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- set parts = code | list -%}
    {%- for name in modules.re.findall('var\\(\\s*[\'"](\\w+)[\'"]', code | join(' ')) | unique | sort -%}
        {%- do parts.append(name ~ '=' ~ (var(name, none) | tojson)) -%}
    {%- endfor -%}
    {#- The parsed node's parents: the same whichever branch the SQL was compiled with. -#}
    {%- for parent in (graph.nodes.get(node.unique_id) or node).depends_on.nodes | sort -%}
        {%- set parent_node = graph.nodes.get(parent) or graph.sources.get(parent) -%}
        {%- do parts.append(parent ~ '=' ~ definition_fingerprint(parent_node, memo)) -%}
    {%- endfor -%}
    {%- set fingerprint = local_md5(parts | join('|')) -%}
    {%- do memo.nodes.update({node.unique_id: fingerprint}) -%}
    {{ return(fingerprint) }}
{%- endmacro %}

{#- Staging and int_events_sessionized: the newest load each has seen; parent rows loaded after it are new to it. -#}
{% macro loaded_since_this_table() -%}
    {{ return(newest_in_this_table('loaded_at')) }}
{%- endmacro %}

{#- The models below int_events_sessionized: the rows a parent wrote after this table's newest are new to it. -#}
{% macro written_since_this_table() -%}
    {{ return(newest_in_this_table('updated_at')) }}
{%- endmacro %}

{#- The newest value of a timestamp column of this table, as a literal (1970 when the table is empty). A literal,
    not a subquery, so that Delta skips the parent's files whose statistics end before it (the new-day build
    on es_small: staging found its new dates in 0.8 s instead of 3.3 s). Spark writes it out in the session's
    time zone, UTC, in which the literal is read back: the Python process's own zone never enters. -#}
{% macro newest_in_this_table(column) -%}
    {%- set query -%}
        select concat("timestamp '", coalesce(date_format(max({{ column }}), 'yyyy-MM-dd HH:mm:ss.SSSSSS'),
            '1970-01-01 00:00:00'), "'")
        from {{ this }}
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0] if execute else "timestamp '1970-01-01 00:00:00'") }}
{%- endmacro %}

{#- The dates of the rows `parent` wrote since this table's newest row: the partitions to recompute. -#}
{% macro dates_written_since_this_table(parent, column='event_date') -%}
    {{ return(literal_list(
        "select distinct " ~ column ~ " from " ~ parent ~ " where updated_at > " ~ written_since_this_table())) }}
{%- endmacro %}

{#- The distinct values of the first column of a query, as SQL literals for a partition filter. -#}
{% macro literal_list(query) -%}
    {%- set values = [] -%}
    {%- if not execute -%}
        {{ return(values) }}
    {%- endif -%}
    {%- for value in run_query(query).columns[0].values() if value is not none -%}
        {%- do values.append("date '" ~ value ~ "'") -%}
    {%- endfor -%}
    {{ return(values) }}
{%- endmacro %}

{#- A filter on a date partition column; false when there is nothing to recompute. -#}
{% macro in_dates(column, dates) -%}
    {%- if dates -%}
        {{ column }} in ({{ dates | join(', ') }})
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}

{#- Remove whole date partitions that a recompute left without rows (insert_overwrite replaces only the
    partitions its result holds). -#}
{% macro clear_partitions(column, dates) -%}
    {%- if dates and table_format() == 'delta' -%}
        delete from {{ this }} where {{ in_dates(column, dates) }}
    {%- elif dates -%}
        {%- set columns = adapter.get_columns_in_relation(this) | rejectattr('name', 'equalto', column) | list -%}
        {%- for date in dates %}
            insert overwrite table {{ this }} partition ({{ column }} = {{ date }})
            select
                {%- for c in columns %}
                    cast(null as {{ c.data_type }}) as {{ c.quoted }}{{ ',' if not loop.last }}
                {%- endfor %}
            where false;
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- The start of this dbt invocation, in UTC like loaded_at and updated_at. -#}
{% macro this_run_started() -%}
    timestamp '{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}'
{%- endmacro %}

{#- dbt's get_where_subquery, plus two words for a test's `where`: `__this_run__` becomes this invocation's
    start, so `where: "updated_at >= __this_run__"` tests the rows this build wrote (all of them on a full
    refresh, when every row is written); `__users_written_this_run__` is the users this build recomputed,
    for a view without build times (int_level_changes). -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- if '__users_written_this_run__' in where -%}
            {%- set users_written -%}
                (select user_id from {{ ref('users') }} where updated_at >= {{ this_run_started() }})
            {%- endset -%}
            {%- set where = where | replace('__users_written_this_run__', users_written) -%}
        {%- endif -%}
        {%- set where = where | replace('__this_run__', this_run_started()) -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- else -%}
        {{ return(relation) }}
    {%- endif -%}
{%- endmacro %}

{#- The rows of this table in the partitions `dates` of `column` that belong to no (user, sessionId) of the model's
    `touched_pairs` CTE: a model that recomputes those pairs whole keeps these as they were. -#}
{% macro rows_of_untouched_pairs(column, dates) -%}
    select existing.*
    from {{ this }} as existing
    left anti join touched_pairs
        on existing.user_id = touched_pairs.user_id
            and existing.session_id = touched_pairs.session_id
    where {{ in_dates('existing.' ~ column, dates) }}
{%- endmacro %}

{#- Every event date of the (user, sessionId) pairs that have an event loaded after `since` in staging: the
    dates whose sessions those events can change (int_events_sessionized). -#}
{% macro dates_of_pairs_loaded_since(relation, since) -%}
    {%- set query %}
        select distinct events.event_date
        from {{ relation }} as events
        left semi join (
            select
                user_id,
                session_id
            from {{ relation }}
            where loaded_at > {{ since }}
        ) as touched
            on events.user_id = touched.user_id
                and events.session_id = touched.session_id
    {%- endset %}
    {{ return(literal_list(query)) }}
{%- endmacro %}
