{#- Raw files that are not loaded as they stand: corrupt or truncated gzip files (checked before each
    build by sparkify/raw_files.py), with the lines readable before the damage, and loaded files that
    changed since. Replacing or removing the file, or giving a changed file's new version a new name,
    clears it. -#}
{{ config(materialized='table') }}

with raw_files as (

    {{ raw_files_with_loads(ref('bronze_events')) }}

),

final as (

    select
        path,
        reason,
        lines as readable_lines,
        size as size_bytes,
        timestamp_micros(div(mtime_ns, 1000)) as modified_at
    from raw_files
    where reason is not null

)

select * from final
