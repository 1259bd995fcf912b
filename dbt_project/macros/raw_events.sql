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
    }[field]) }}
{%- endmacro %}

{% macro sql_list(values) -%}
    {%- for value in values -%}
        {%- if value is string -%}'{{ value | replace("'", "''") }}'{%- else -%}{{ value }}{%- endif -%}
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

{#- The raw files not loaded into `relation` yet, listed through Spark's binaryFile source (which
    reads no file content), so that an incremental run reads only new files. -#}
{% macro new_event_files(relation) -%}
    {%- if not execute or not reads_raw_files() -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set listed = run_query("select path from binaryFile.`" ~ events_path() ~ "`").columns[0].values() -%}
    {%- set loaded = [] -%}
    {%- if relation is not none -%}
        {%- set loaded = run_query("select distinct source_file from " ~ relation).columns[0].values() -%}
    {%- endif -%}
    {{ return(listed | reject('in', loaded) | list | sort) }}
{%- endmacro %}

{#- One Spark path (a Hadoop glob) that matches exactly the given files: their common directory
    followed by a {a,b,...} alternation of the rest of each path. -#}
{% macro files_glob(files) -%}
    {%- set paths = [] -%}
    {%- for file in files -%}
        {%- set path = file[5:] if file.startswith('file:') else file -%}
        {%- do paths.append(path | replace('\\', '\\\\') | replace(',', '\\,') | replace('{', '\\{') | replace('}', '\\}')) -%}
    {%- endfor -%}
    {%- if paths | length == 1 -%}
        {{ return(paths[0]) }}
    {%- endif -%}
    {%- set parts = paths[0].split('/')[:-1] -%}
    {%- set common = namespace(depth=parts | length) -%}
    {%- for path in paths -%}
        {%- set other = path.split('/') -%}
        {%- for i in range(common.depth) -%}
            {%- if i >= (other | length) - 1 or other[i] != parts[i] -%}
                {%- set common.depth = [common.depth, i] | min -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- set prefix = parts[:common.depth] | join('/') -%}
    {%- set rests = [] -%}
    {%- for path in paths -%}
        {%- do rests.append(path[prefix | length + 1:]) -%}
    {%- endfor -%}
    {{ return(prefix ~ '/{' ~ rests | join(',') ~ '}') }}
{%- endmacro %}

{#- Only commands that run models or tests read the raw files; `dbt compile` and
    `dbt docs generate` render the SQL without them. -#}
{% macro reads_raw_files() -%}
    {{ return(flags.WHICH in ['run', 'build', 'test', 'retry']) }}
{%- endmacro %}
