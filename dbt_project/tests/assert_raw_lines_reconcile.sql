{#-
    Nothing is lost: for every sound raw file on disk (not in rejected_files), the lines
    sparkify/raw_files.py counted when it checked the file (cached by size and mtime, so history is not
    re-read) equal the lines recorded in bronze; and over all loads raw lines = clean events +
    duplicates removed + quarantined + guest. Each term is counted in its own model. Returns one row per violation.
-#}
with raw_files as (

    {{ raw_files_with_loads(ref('bronze_events')) }}

),

bronze_events as (

    select * from {{ ref('bronze_events') }}

),

file_mismatches as (

    select
        concat('file ', path) as what,
        lines as expected,
        coalesce(loaded_lines, 0) as actual
    from raw_files
    where reason is null and lines != coalesce(loaded_lines, 0)

),

terms as (

    select
        (select sum(line_count) from bronze_events) as raw_lines,
        (select count(*) from {{ ref('stg_sparkify__events') }}) as clean_events,
        (
            {#- Grouped first: a count(distinct) next to a sum makes Spark expand and aggregate twice. #}
            select sum(lines) - count(*)
            from (
                select
                    event_id,
                    sum(line_count) as lines
                from bronze_events
                where record_status = 'event'
                group by event_id
            ) as per_event
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
