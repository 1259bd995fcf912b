{#-
    Fails the build when more than max_quarantine_share (default 1%) of the lines this build loaded
    are quarantined: the new files are probably not Sparkify data, or their format changed. The share
    is over this run's new lines only, so history does not dilute it, and a later build that loads no
    such file passes again. Everything downstream of bronze is skipped when it fails; the rejected
    lines and their reasons are in quarantined_lines.
-#}
with bronze_events as (

    select * from {{ ref('bronze_events') }}

),

this_run as (

    select *
    from bronze_events
    {#- run_started_at: the start of this dbt invocation, in UTC like loaded_at. #}
    where loaded_at >= timestamp '{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}'

),

shares as (

    select
        sum(case when record_status = 'quarantined' then line_count else 0 end) as quarantined_lines,
        sum(line_count) as raw_lines
    from this_run

)

select
    quarantined_lines,
    raw_lines,
    quarantined_lines / raw_lines as quarantined_share,
    {{ var('max_quarantine_share') }} as max_quarantine_share
from shares
where quarantined_lines > {{ var('max_quarantine_share') }} * raw_lines
