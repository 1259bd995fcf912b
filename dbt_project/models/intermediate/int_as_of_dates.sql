{#-
    The dates at which user features are computed: every `as_of_interval_days` from the first
    event date, plus the day after the last event (the scoring date, which sees all the data).
    A feature row uses events strictly before as_of (midnight UTC); its labels look at
    (as_of, as_of + horizon], which is complete only when the data reaches that far.
    observed_start_at and observed_end_at bound what the data can show: windows that start before
    the first event date or end after the last event are only partly observed, and the per-day
    features divide by the observed part.
    A view: a few rows, from the bounds of the events, computed when user_features reads it.
-#}
{{ config(materialized='view') }}

with bounds as (

    select
        min(event_date) as first_event_date,
        max(event_date) as last_event_date,
        max(event_at) as last_event_at
    from {{ ref('stg_sparkify__events') }}

),

dates as (

    {#- The weekly dates up to the last event date, then the scoring date, from one read of the bounds: Spark
        inlines a CTE at each use, and user_features reads this view twice (with the bounds read three times
        here, its select ran 46 jobs over 11 scans of staging). The sequence may not run backwards: data
        shorter than one interval (a first day's file) has no weekly date, only the scoring date. -#}
    select
        explode(array_union(
            filter(
                sequence(
                    date_add(first_event_date, {{ var('as_of_interval_days') }}),
                    greatest(date_add(first_event_date, {{ var('as_of_interval_days') }}), last_event_date),
                    make_interval(0, 0, 0, {{ var('as_of_interval_days') }})
                ),
                weekly_date -> weekly_date <= last_event_date
            ),
            array(date_add(last_event_date, 1))
        )) as as_of_date,
        first_event_date,
        last_event_date,
        last_event_at
    from bounds

),

final as (

    select
        as_of_date,
        to_timestamp(as_of_date) as as_of_at,
        to_timestamp(first_event_date) as observed_start_at,
        least(to_timestamp(as_of_date), last_event_at) as observed_end_at,
        as_of_date = date_add(last_event_date, 1) as is_scoring_date,
        to_timestamp(as_of_date) + make_interval(0, 0, 0, {{ var('churn_horizon_days') }})
        <= last_event_at as is_label_complete
    from dates

)

select * from final
