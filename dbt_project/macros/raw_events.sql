{#- The raw Sparkify event format: 18 fields, in the order eventsim writes them. Everything is read as
    a string first, so that a value of the wrong type is caught and explained instead of turning
    into a silent null. -#}

{% macro raw_event_fields() -%}
    {{ return([
        ('ts', 'bigint'),
        ('userId', 'string'),
        ('sessionId', 'bigint'),
        ('page', 'string'),
        ('auth', 'string'),
        ('method', 'string'),
        ('status', 'int'),
        ('level', 'string'),
        ('itemInSession', 'int'),
        ('location', 'string'),
        ('userAgent', 'string'),
        ('lastName', 'string'),
        ('firstName', 'string'),
        ('registration', 'bigint'),
        ('gender', 'string'),
        ('artist', 'string'),
        ('song', 'string'),
        ('length', 'double'),
    ]) }}
{%- endmacro %}

{% macro raw_event_string_schema() -%}
    {%- for name, _ in raw_event_fields() -%}
        `{{ name }}` string,{{ ' ' }}
    {%- endfor -%}
    _corrupt_record string
{%- endmacro %}

{#- Accepted values of the categorical fields; pages come from the sparkify_pages seed. -#}
{% macro accepted_values_of(field) -%}
    {{ return({
        'auth': ['Logged In', 'Logged Out', 'Guest', 'Cancelled'],
        'level': ['free', 'paid'],
        'method': ['GET', 'PUT'],
        'status': [200, 307, 404],
        'gender': ['M', 'F'],
        'auth_without_user': ['Logged Out', 'Guest'],
    }[field]) }}
{%- endmacro %}

{% macro sql_list(values) -%}
    {%- for value in values -%}
        {%- if value is string -%}'{{ value | replace('\\', '\\\\') | replace("'", "''") }}'{%- else -%}{{ value }}{%- endif -%}
        {{- ', ' if not loop.last -}}
    {%- endfor -%}
{%- endmacro %}

{#- The Spark path glob of the raw files: validated and made absolute by `python -m sparkify.dbt`. -#}
{% macro events_path() -%}
    {%- set path = env_var('SPARKIFY_EVENTS_GLOB', env_var('SPARKIFY_EVENTS', '')) -%}
    {%- if not path and not reads_raw_files() -%}
        {{ return('$SPARKIFY_EVENTS') }}
    {%- endif -%}
    {%- if not path and execute -%}
        {{ exceptions.raise_compiler_error(
            "SPARKIFY_EVENTS is not set: point it at a JSON-lines file, directory or glob "
            ~ "(`make run` generates demo data when it is unset)") }}
    {%- endif -%}
    {{ return(path) }}
{%- endmacro %}

{#- The raw files sparkify/raw_files.py checked before this run (path, size, mtime_ns, lines, reason), read
    from $SPARKIFY_HOME/raw_files.jsonl. `reason` is null for a sound file, else why it is rejected. -#}
{% macro checked_raw_files() -%}
    select checked.*
    from (
        select from_json(value, '{{ raw_files_schema() }}') as checked
        from text.{{ quoted_path(env_var('SPARKIFY_RAW_FILES')) }}
    )
{%- endmacro %}

{#- Every checked raw file with what bronze loaded from it (lines, and the size and modification time it had
    when read), and `reason` set for each file that is not loaded as it stands: corrupt or truncated (from
    sparkify/raw_files.py), or changed after it was loaded. Loaded files are never re-read, so a changed
    file's new content waits, listed in rejected_files, until it gets a new name or the old version returns. -#}
{% macro raw_files_with_loads(bronze) -%}
    select
        checked.path,
        checked.size,
        checked.mtime_ns,
        checked.lines,
        loaded.lines as loaded_lines,
        case
            when loaded.path is not null
                and (loaded.size != checked.size or loaded.mtime_ms != div(checked.mtime_ns, 1000000))
                then concat(
                    'changed after it was loaded (', loaded.size, ' bytes and ', loaded.lines,
                    ' lines when loaded, now ', checked.size, ' bytes and ', checked.lines, ' lines): its loaded ',
                    'lines stay and the change is not read; to load the new version give it a new file name ',
                    '(lines already loaded then count as duplicates), or restore the loaded version'
                )
            else checked.reason
        end as reason
    from ({{ checked_raw_files() }}) as checked
    left join (
        {#- Grouped on the recorded path first, so each file's path is decoded once, not once per row. #}
        select
            {{ decoded_path('source_file') }} as path,
            max(size) as size,
            max(mtime_ms) as mtime_ms,
            sum(lines) as lines
        from (
            select
                source_file,
                max(source_file_size) as size,
                max(unix_millis(source_file_modified_at)) as mtime_ms,
                sum(line_count) as lines
            from {{ bronze }}
            group by source_file
        ) as per_file
        group by {{ decoded_path('source_file') }}
    ) as loaded
        on checked.path = loaded.path
{%- endmacro %}

{% macro raw_files_schema() -%}
    path string, size bigint, mtime_ns bigint, lines bigint, reason string
{%- endmacro %}

{#- The sound raw files not loaded into `relation` yet, as plain paths, so that an incremental run reads
    only new files. Rejected files are never read. -#}
{% macro new_event_files(relation) -%}
    {%- if not execute or not reads_raw_files() -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set query -%}
        select files.path
        from ({{ checked_raw_files() }}) as files
        where files.reason is null
        {%- if relation is not none %}
            and files.path not in (
                select {{ decoded_path('source_file') }} from (select distinct source_file from {{ relation }}) as loaded
            )
        {%- endif %}
        order by files.path
    {%- endset -%}
    {{ return(run_query(query).columns[0].values() | list) }}
{%- endmacro %}

{#- A file path as Spark records it (`_metadata.file_path`, a URI: `file:/dir/day%20one.json`) turned back
    into the plain path (`/dir/day one.json`). A `+` in a URI is a plus, not a space. -#}
{% macro decoded_path(column) -%}
    case
        when startswith({{ column }}, 'file:') then url_decode(replace(substr({{ column }}, 6), '+', '%2B'))
        else {{ column }}
    end
{%- endmacro %}

{#- A path in backticks, for `text.`path``: a backtick inside is doubled, so no name changes the SQL. -#}
{% macro quoted_path(path) -%}
    `{{ path | replace('`', '``') }}`
{%- endmacro %}

{#- Only commands that run models or tests read the raw files; `dbt compile` and
    `dbt docs generate` render the SQL without them. -#}
{% macro reads_raw_files() -%}
    {{ return(flags.WHICH in ['run', 'build', 'test', 'retry']) }}
{%- endmacro %}
