{#- The table format and the matching incremental strategy, resolved once by `python -m sparkify.dbt`
    (SPARKIFY_TABLE_FORMAT=delta|parquet). Delta tables merge on their unique key; Parquet tables
    overwrite the event-date partitions a run touches. -#}

{% macro table_format() -%}
    {{ return('delta' if env_var('SPARKIFY_TABLE_FORMAT', 'parquet') == 'delta' else 'parquet') }}
{%- endmacro %}

{% macro incremental_strategy() -%}
    {{ return('merge' if table_format() == 'delta' else 'insert_overwrite') }}
{%- endmacro %}
