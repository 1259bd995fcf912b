{#- Raw files that were not loaded because they do not decompress to the end (see sparkify/raw_files.py),
    with the reason and the lines readable before the damage. Replacing or removing the file clears it. -#}
{{ config(materialized='table') }}

with checked_raw_files as (

    {{ checked_raw_files() }}

),

final as (

    select
        path,
        reason,
        lines as readable_lines,
        size as size_bytes,
        timestamp_micros(div(mtime_ns, 1000)) as modified_at
    from checked_raw_files
    where reason is not null

)

select * from final
