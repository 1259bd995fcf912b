{#-
    How the full-history models stay incremental (README, "What a build recomputes").

    Every row of an incremental model carries `loaded_at`, the load of the newest event behind it, and
    `updated_at`, when a build last wrote it. A model finds what it has not seen by comparing its parent's
    `loaded_at` with its own newest one (its watermark), recomputes whole date partitions from that, and
    overwrites those partitions (`insert_overwrite`, on Delta and Parquet alike). A table holds every load
    up to its watermark, so a build killed half-way leaves the later models behind, and the next build
    catches them up. Data tests check the rows this build wrote (`updated_at >= __this_run__`).

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
    {{ return(stored_definition(relation) != definition_fingerprint(model)) }}
{%- endmacro %}

{#- post-hook of every incremental model: keep the definition it was built from, when it changed. -#}
{% macro store_definition() -%}
    {%- if execute and model.config.materialized == 'incremental' -%}
        {%- set fingerprint = definition_fingerprint(model) -%}
        {%- set stored = stored_definition(this) -%}
        {%- if stored != fingerprint -%}
            {%- if stored and not flags.FULL_REFRESH -%}
                {{ log(this.identifier ~ ": its definition changed since the table was built (its SQL, a var, a "
                       ~ "macro or something upstream), so it was rebuilt in full", info=true) }}
            {%- endif %}
            alter table {{ this }} set tblproperties ('sparkify.definition' = '{{ fingerprint }}')
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro stored_definition(relation) -%}
    {%- for row in run_query("show tblproperties " ~ relation).rows if row[0] == 'sparkify.definition' -%}
        {{ return(row[1]) }}
    {%- endfor -%}
    {{ return(none) }}
{%- endmacro %}

{#- The fingerprint of a node's definition: its SQL, the macros it calls (and theirs), the values of the vars
    they name, and its parents' fingerprints (a seed: its file's checksum). Data never enters it. -#}
{% macro definition_fingerprint(node) -%}
    {%- if node.resource_type == 'seed' -%}
        {{ return('seed:' ~ node.checksum.checksum) }}
    {%- elif node.resource_type != 'model' -%}
        {{ return(node.resource_type) }}
    {%- endif -%}
    {%- set code = [node.raw_code] -%}
    {%- set macros = node.depends_on.macros | list -%}
    {%- for unique_id in macros -%}
        {#- The project's own macros (dbt's and the adapter's come with the installed versions). -#}
        {%- set package, name = unique_id.split('.')[1:] -%}
        {%- set generator = context.get(name) if package == project_name else none -%}
        {%- set macro = generator.macro if generator is not none else none -%}
        {%- if macro -%}
            {%- do code.append(macro.macro_sql) -%}
            {%- for called in macro.depends_on.macros if called not in macros -%}
                {%- do macros.append(called) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set parts = code | list -%}
    {%- for name in modules.re.findall("var\(\s*['\"](\w+)['\"]", code | join('\n')) | unique | sort -%}
        {%- do parts.append(name ~ '=' ~ (var(name, none) | tojson)) -%}
    {%- endfor -%}
    {%- for parent in node.depends_on.nodes | sort -%}
        {%- set parent_node = graph.nodes.get(parent) or graph.sources.get(parent) -%}
        {%- do parts.append(parent ~ '=' ~ definition_fingerprint(parent_node)) -%}
    {%- endfor -%}
    {{ return(local_md5(parts | join('|'))) }}
{%- endmacro %}

{#- The newest load this model's table has seen (`loaded_at`, the load of the newest event behind a row): a
    parent's rows loaded after it are what it has not seen yet. -#}
{% macro watermark() -%}
    {%- set newest = run_query("select cast(max(loaded_at) as string) from " ~ this).columns[0].values()[0] -%}
    {{ return("timestamp '" ~ (newest or '1970-01-01 00:00:00') ~ "'") }}
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

{#- dbt's get_where_subquery, plus one word for a test's `where`: `__this_run__` becomes this invocation's
    start, so `where: "updated_at >= __this_run__"` tests the rows this build wrote (all of them on a full
    refresh, when every row is written). -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- set where = where | replace('__this_run__', this_run_started()) -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- else -%}
        {{ return(relation) }}
    {%- endif -%}
{%- endmacro %}

{#- Every event date of the (user, sessionId) pairs that have an event loaded after `since` in `relation`
    (staging or int_events_sessionized): the dates whose sessions and daily activity those events can change. -#}
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
