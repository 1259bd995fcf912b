{#-
    One row per customer for the service desk and the dashboard: profile, tenure, activity, the
    latest churn score with its reasons, and each activity figure next to the median of the
    population scored at the same as_of date (the users with a score at the customer's
    scored_as_of_date). Scores come from the ML script's churn_scores table; before the first
    training run the score and median columns are null.
    A table rebuilt by every build that runs it: each scoring date moves the medians every customer is
    compared with, and its inputs (users, daily_activity, the scores) are small.
-#}
{{ config(materialized='table') }}
{#- The scores are read only once the table exists, so the dependency is declared here for dbt's parse:
    it puts churn_scores into the lineage. -#}
-- depends_on: {{ source('ml', 'churn_scores') }}
{%- set has_scores = table_exists('churn_scores') %}
{#- The activity figures the dashboard compares with the scored population. -#}
{%- set compared = [
    'active_days',
    'songs_per_active_day',
    'sessions',
    'listen_hours',
    'songs_7d',
    'thumbs_down_per_100_songs',
    'adverts_per_100_songs',
] %}

with users as (

    select * from {{ ref('users') }}

),

daily_activity as (

    select * from {{ ref('daily_activity') }}

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

    {#- The newest scoring date of all, as a window over the per-user latest scores (their maximum), not as a
        scalar subquery or a cross join: Spark inlines a CTE at each use, and with the activity figures read
        the same way they multiplied this small model's plan (es_small, warm session: 53 jobs and 5.6 s for its
        select that way, 21 jobs and 2.4 s this way). #}
    select
        per_user.user_id,
        per_user.latest,
        max(per_user.latest.as_of_date) over () as newest_as_of_date
    from (
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
    ) as per_user

),

per_user_activity as (

    {#- Lifetime feedback and the last seven days of activity in one pass over daily_activity; the last
        activity date of the data is a window over all rows. #}
    select
        user_id,
        sum(if(is_last_7_days, song_events, 0)) as songs_7d,
        count_if(is_last_7_days) as active_days_7d,
        sum(thumbs_up_events) as thumbs_up,
        sum(thumbs_down_events) as thumbs_down,
        sum(advert_events) as adverts
    from (
        select
            *,
            activity_date > date_sub(max(activity_date) over (), 7) as is_last_7_days
        from daily_activity
    ) as dated
    group by user_id

),

activity as (

    select
        users.user_id,
        users.active_days,
        users.sessions,
        users.listen_hours,
        users.songs / nullif(users.active_days, 0) as songs_per_active_day,
        coalesce(per_user_activity.songs_7d, 0) as songs_7d,
        coalesce(per_user_activity.active_days_7d, 0) as active_days_7d,
        coalesce(per_user_activity.thumbs_up, 0) as thumbs_up,
        coalesce(per_user_activity.thumbs_down, 0) as thumbs_down,
        coalesce(per_user_activity.adverts, 0) as adverts,
        100.0 * per_user_activity.thumbs_down / nullif(users.songs, 0) as thumbs_down_per_100_songs,
        100.0 * per_user_activity.adverts / nullif(users.songs, 0) as adverts_per_100_songs,
        datediff(
            to_date(users.last_event_at),
            to_date(least(coalesce(users.registered_at, users.first_event_at), users.first_event_at))
        ) as tenure_days,
        datediff(to_date(max(users.last_event_at) over ()), to_date(users.last_event_at)) as days_since_last_event
    from users
    left join per_user_activity
        on users.user_id = per_user_activity.user_id

),

scored_population as (

    select distinct
        user_id,
        as_of_date
    from scores

),

population_medians as (

    select
        scored_population.as_of_date,
        {%- for metric in compared %}
            percentile(activity.{{ metric }}, 0.5) as median_{{ metric }},
        {%- endfor %}
        count(*) as population_size
    from scored_population
    inner join activity
        on scored_population.user_id = activity.user_id
    group by scored_population.as_of_date

),

final as (

    select
        users.user_id,
        trim(concat_ws(' ', users.first_name, users.last_name)) as name,
        users.first_name,
        users.last_name,
        users.gender,
        users.location,
        users.city,
        users.state,
        users.browser,
        users.operating_system,
        users.device,
        users.first_level,
        users.current_level,
        users.level_history,
        users.registered_at,
        users.first_event_at,
        users.last_event_at,
        activity.tenure_days,
        activity.days_since_last_event,
        users.upgrades,
        users.downgrades,
        users.is_churned,
        users.churned_at,
        users.songs,
        activity.active_days_7d,
        activity.thumbs_up,
        activity.thumbs_down,
        activity.adverts,
        {%- for metric in compared %}
            activity.{{ metric }},
        {%- endfor %}
        latest_scores.latest.as_of_date as scored_as_of_date,
        latest_scores.latest.as_of_date = latest_scores.newest_as_of_date as is_current_score,
        latest_scores.latest.churn_probability,
        latest_scores.latest.risk_band,
        latest_scores.latest.reason_1,
        latest_scores.latest.reason_2,
        latest_scores.latest.reason_3,
        latest_scores.latest.model_run_id,
        latest_scores.latest.scored_at,
        {%- for metric in compared %}
            population_medians.median_{{ metric }},
            activity.{{ metric }} / nullif(population_medians.median_{{ metric }}, 0) as {{ metric }}_vs_median,
        {%- endfor %}
        population_medians.population_size as median_population_size
    from users
    inner join activity
        on users.user_id = activity.user_id
    left join latest_scores
        on users.user_id = latest_scores.user_id
    left join population_medians
        on latest_scores.latest.as_of_date = population_medians.as_of_date

)

select * from final
