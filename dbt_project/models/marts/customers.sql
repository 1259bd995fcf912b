{#-
    One row per customer for the service desk: profile, activity against the population median,
    and the latest churn score with its reasons. Scores come from the ML script's churn_scores
    table; before the first training run the score columns are null.
    Rebuilt on every run, since scores change without new events.
-#}
{{ config(materialized='table') }}
{%- set has_scores = table_exists('churn_scores') %}

with users as (

    select * from {{ ref('users') }}

),

{%- if has_scores %}

    scores as (

        select * from {{ source('ml', 'churn_scores') }}

    ),

{%- else %}

    scores as (

        select
            cast(null as string) as user_id,
            cast(null as date) as as_of_date,
            cast(null as double) as churn_probability,
            cast(null as string) as risk_band,
            cast(null as string) as reason_1,
            cast(null as string) as reason_2,
            cast(null as string) as reason_3,
            cast(null as string) as model_run_id,
            cast(null as timestamp) as scored_at
        where false

    ),

{%- endif %}

latest_scores as (

    select
        user_id,
        max_by(
            struct(
                as_of_date, churn_probability, risk_band, reason_1, reason_2, reason_3, model_run_id, scored_at
            ),
            struct(as_of_date, scored_at)
        ) as latest
    from scores
    group by user_id

),

activity as (

    select
        user_id,
        active_days,
        songs / nullif(active_days, 0) as songs_per_active_day
    from users

),

population as (

    select
        percentile(activity.active_days, 0.5) as median_active_days,
        percentile(activity.songs_per_active_day, 0.5) as median_songs_per_active_day
    from activity

),

final as (

    select
        users.user_id,
        users.first_name,
        users.last_name,
        users.gender,
        users.location,
        users.city,
        users.state,
        users.current_level,
        users.registered_at,
        users.first_event_at,
        users.last_event_at,
        users.upgrades,
        users.downgrades,
        users.is_churned,
        users.churned_at,
        users.songs,
        users.listen_hours,
        activity.active_days,
        population.median_active_days,
        activity.songs_per_active_day,
        population.median_songs_per_active_day,
        latest_scores.latest.as_of_date as scored_as_of_date,
        latest_scores.latest.churn_probability,
        latest_scores.latest.risk_band,
        latest_scores.latest.reason_1,
        latest_scores.latest.reason_2,
        latest_scores.latest.reason_3,
        latest_scores.latest.model_run_id,
        latest_scores.latest.scored_at,
        datediff(
            to_date(users.last_event_at),
            to_date(least(coalesce(users.registered_at, users.first_event_at), users.first_event_at))
        ) as tenure_days,
        activity.active_days / nullif(population.median_active_days, 0) as active_days_vs_median,
        activity.songs_per_active_day / nullif(population.median_songs_per_active_day, 0)
            as songs_per_active_day_vs_median
    from users
    inner join activity
        on users.user_id = activity.user_id
    cross join population
    left join latest_scores
        on users.user_id = latest_scores.user_id

)

select * from final
