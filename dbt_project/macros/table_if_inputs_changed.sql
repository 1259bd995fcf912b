{#-
    A table that is rebuilt only when its inputs changed, following lineage: its fingerprint covers
    its own compiled SQL (which holds the value of every var it uses) and the fingerprint of each
    parent, so a changed var, seed or SQL anywhere upstream rebuilds everything downstream of it.
    Otherwise the run skips it, so a no-change `dbt build` does not recompute the full-history
    models. The fingerprint is kept in the table's properties; `--full-refresh` always rebuilds.
-#}
{% materialization table_if_inputs_changed, adapter='spark' %}
    {%- set fingerprint = inputs_fingerprint(sql) -%}
    {%- set existing = load_cached_relation(this) -%}
    {%- if existing is not none and not should_full_refresh() and stored_fingerprint(existing) == fingerprint -%}
        {{ log(this.identifier ~ ": inputs unchanged, keeping the table", info=true) }}
        {%- call noop_statement('main', 'SKIP (inputs unchanged)', 'SKIP') -%}{%- endcall -%}
        {{ return({'relations': [this]}) }}
    {%- endif -%}
    {%- set result = materialization_table_spark() -%}
    {%- call statement('store_fingerprint') -%}
        alter table {{ this }} set tblproperties ('sparkify.inputs_fingerprint' = '{{ fingerprint }}')
    {%- endcall -%}
    {{ return(result) }}
{% endmaterialization %}

{% macro inputs_fingerprint(sql) -%}
    {%- set parts = [sql] -%}
    {%- for parent in model.depends_on.nodes | sort -%}
        {%- do parts.append(parent ~ '=' ~ node_fingerprint(graph.nodes.get(parent) or graph.sources[parent])) -%}
    {%- endfor -%}
    {{ return(local_md5(parts | join('|'))) }}
{%- endmacro %}

{#- What a parent contributes to a fingerprint:
    - a seed: the checksum of its file;
    - a table_if_inputs_changed model: the fingerprint it stored when it was last built (dbt builds
      parents first, so this is the fresh one);
    - a view: its SQL file's checksum and, recursively, its parents (no view here reads a var);
    - a source (the ML script's churn_scores): its row count and the xor of its rows' hashes, or `absent`;
    - any other table (bronze, staging, which grow incrementally): its SQL file's checksum and the
      state of its rows, count and latest load. -#}
{% macro node_fingerprint(node) -%}
    {%- if node.resource_type == 'seed' -%}
        {{ return('seed:' ~ node.checksum.checksum) }}
    {%- endif -%}
    {%- if node.resource_type == 'source' -%}
        {%- set relation = adapter.get_relation(database=none, schema=node.schema, identifier=node.identifier) -%}
        {%- if relation is none -%}
            {{ return('source:absent') }}
        {%- endif -%}
        {%- set state = run_query(
            "select concat_ws('/', cast(count(*) as string), cast(coalesce(bit_xor(xxhash64(*)), 0) as string)) from "
            ~ relation
        ).columns[0].values()[0] -%}
        {{ return('source:' ~ state) }}
    {%- endif -%}
    {%- set relation = api.Relation.create(schema=node.schema, identifier=node.alias) -%}
    {%- set materialized = node.config.materialized -%}
    {%- if materialized == 'table_if_inputs_changed' -%}
        {{ return('fingerprint:' ~ (stored_fingerprint(relation) or 'none')) }}
    {%- elif materialized == 'view' -%}
        {%- set parts = ['view:' ~ node.checksum.checksum] -%}
        {%- for parent in node.depends_on.nodes | sort -%}
            {%- do parts.append(node_fingerprint(graph.nodes[parent])) -%}
        {%- endfor -%}
        {{ return(local_md5(parts | join('|'))) }}
    {%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(relation) | map(attribute='name') | list -%}
    {%- set latest = "cast(max(loaded_at) as string)" if 'loaded_at' in columns else "''" -%}
    {%- set state = run_query(
        "select concat_ws('/', cast(count(*) as string), " ~ latest ~ ") from " ~ relation
    ).columns[0].values()[0] -%}
    {{ return('rows:' ~ node.checksum.checksum ~ ':' ~ state) }}
{%- endmacro %}

{% macro stored_fingerprint(relation) -%}
    {%- set rows = run_query("show tblproperties " ~ relation).rows -%}
    {%- for row in rows if row[0] == 'sparkify.inputs_fingerprint' -%}
        {{ return(row[1]) }}
    {%- endfor -%}
    {{ return(none) }}
{%- endmacro %}
