{#-
    Nothing is lost: for every sound raw file on disk, the lines sparkify/raw_files.py counted when it
    checked the file (cached by size and mtime, so history is not re-read) equal the lines recorded in
    bronze; and over all loads raw lines = clean events + duplicates removed + quarantined + guest.
    Each term is counted in its own model. Returns one row per violation.
-#}
with raw_files as (

    select
        path,
        lines as raw_lines
    from ({{ checked_raw_files() }})
    where reason is null

),

bronze_events as (

    select * from {{ ref('bronze_events') }}

),

bronze_files as (

    select
        {{ decoded_path('source_file') }} as path,
        sum(line_count) as bronze_lines
    from bronze_events
    group by {{ decoded_path('source_file') }}

),

file_mismatches as (

    select
        concat('file ', raw_files.path) as what,
        raw_files.raw_lines as expected,
        coalesce(bronze_files.bronze_lines, 0) as actual
    from raw_files
    left join bronze_files
        on raw_files.path = bronze_files.path
    where raw_files.raw_lines != coalesce(bronze_files.bronze_lines, 0)

),

terms as (

    select
        (select sum(line_count) from bronze_events) as raw_lines,
        (select count(*) from {{ ref('stg_sparkify__events') }}) as clean_events,
        (
            select sum(line_count) - count(distinct event_id)
            from bronze_events
            where record_status = 'event'
        ) as duplicates_removed,
        (select coalesce(sum(line_count), 0) from {{ ref('quarantined_lines') }}) as quarantined,
        (select coalesce(sum(line_count), 0) from {{ ref('stg_sparkify__guest_events') }}) as guest

),

total_mismatch as (

    select
        'raw lines = clean + duplicates removed + quarantined + guest' as what,
        raw_lines as expected,
        clean_events + duplicates_removed + quarantined + guest as actual
    from terms
    where raw_lines != clean_events + duplicates_removed + quarantined + guest

)

select * from file_mismatches
union all
select * from total_mismatch
