{#-
    Fails the build when more than max_quarantine_share (default 1%) of the raw lines are
    quarantined: the input is probably not Sparkify data, or its format changed. The rejected
    lines and their reasons are in the quarantined_lines table.
-#}
with bronze_events as (

    select * from {{ ref('bronze_events') }}

),

shares as (

    select
        sum(case when record_status = 'quarantined' then line_count else 0 end) as quarantined_lines,
        sum(line_count) as raw_lines
    from bronze_events

)

select
    quarantined_lines,
    raw_lines,
    quarantined_lines / raw_lines as quarantined_share,
    {{ var('max_quarantine_share') }} as max_quarantine_share
from shares
where quarantined_lines > {{ var('max_quarantine_share') }} * raw_lines
