{#-
    Nothing is lost: for every sound raw file on disk (not in rejected_files), the lines
    sparkify/raw_files.py counted when it checked the file (cached by size and mtime, so history is not
    re-read) equal the lines recorded in bronze; and over the lines this build loaded, raw lines = clean
    events + duplicates removed + quarantined + guest, with every distinct event loaded found in staging
    exactly once. Each term is counted in its own model. Returns one row per violation.
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

this_run as (

    {#- The lines this build loaded: history was reconciled when it was loaded. #}
    select *
    from bronze_events
    where loaded_at >= {{ this_run_started() }}

),

this_run_events as (

    {#- Grouped first: a count(distinct) next to a sum makes Spark expand and aggregate twice. #}
    select
        event_id,
        sum(line_count) as lines
    from this_run
    where record_status = 'event'
    group by event_id

),

staged as (

    select
        staged.event_id,
        staged.loaded_at >= {{ this_run_started() }} as is_new
    from {{ ref('stg_sparkify__events') }} as staged
    left semi join this_run_events
        on staged.event_id = this_run_events.event_id

),

line_counts as (

    select
        coalesce(sum(line_count), 0) as raw_lines,
        coalesce(sum(case when record_status = 'quarantined' then line_count end), 0) as quarantined,
        coalesce(sum(case when record_status = 'guest' then line_count end), 0) as guest
    from this_run

),

event_counts as (

    select
        coalesce(sum(lines), 0) as event_lines,
        count(*) as distinct_events
    from this_run_events

),

staged_counts as (

    select
        count_if(is_new) as clean_events,
        count(*) as staged_events
    from staged

),

terms as (

    select
        line_counts.raw_lines,
        staged_counts.clean_events,
        line_counts.quarantined,
        line_counts.guest,
        event_counts.distinct_events,
        staged_counts.staged_events,
        event_counts.event_lines - staged_counts.clean_events as duplicates_removed
    from line_counts
    cross join event_counts
    cross join staged_counts

),

total_mismatch as (

    select
        'raw lines = clean + duplicates removed + quarantined + guest' as what,
        raw_lines as expected,
        clean_events + duplicates_removed + quarantined + guest as actual
    from terms
    where raw_lines != clean_events + duplicates_removed + quarantined + guest

),

unstaged_events as (

    {#- Every distinct event this build loaded is in staging once: new now, or staged by an earlier load. #}
    select
        'every event loaded is in staging once' as what,
        distinct_events as expected,
        staged_events as actual
    from terms
    where distinct_events != staged_events

)

select * from file_mismatches
union all
select * from total_mismatch
union all
select * from unstaged_events
