{#- The table format, resolved once by `python -m sparkify.dbt` (SPARKIFY_TABLE_FORMAT=delta|parquet). Every
    incremental model overwrites the date partitions it recomputes, on either format (macros/incremental.sql). -#}

{% macro table_format() -%}
    {{ return('delta' if env_var('SPARKIFY_TABLE_FORMAT', 'parquet') == 'delta' else 'parquet') }}
{%- endmacro %}

{#- on-run-start: sparkify/dbt.py prepares every dbt process of this project (the venv's start-up hook
    runs it for a plain `dbt`): settings resolved, table format checked, lakehouse lock held. A dbt started
    any other way (another installation, given --profiles-dir by hand) is stopped here, before it writes. -#}
{% macro check_prepared_process() -%}
    {%- if execute and not env_var('SPARKIFY_PREPARED', '') -%}
        {{ exceptions.raise_compiler_error(
            "This dbt process was not started through the project's environment, so the lakehouse lock "
            ~ "and the table-format guard are not in place. Run `dbt` from the project's venv "
            ~ "(`source .venv/bin/activate`, or `.venv/bin/dbt`), or `make build`.") }}
    {%- endif -%}
{%- endmacro %}
