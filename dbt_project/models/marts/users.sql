{#-
    One row per user: profile, subscription history, churn, and lifetime activity.

    Incremental on Delta: the users int_events_sessionized rewrote events of since this table's last build
    are recomputed and merged in.
    On Parquet, which cannot replace rows of an unpartitioned table, it is rebuilt whole.
-#}
{{
    config(
        materialized='incremental' if table_format() == 'delta' else 'table',
        incremental_strategy='merge',
        unique_key='user_id',
    )
}}

-- depends_on: {{ ref('int_events_sessionized') }}
{%- set incremental = is_incremental() %}

{%- if incremental %}

    with touched_users as (

        select distinct user_id
        from {{ ref('int_events_sessionized') }}
        where updated_at > {{ written_since_this_table() }}

    ),

    events as (

        select events.*
        from {{ ref('stg_sparkify__events') }} as events
        left semi join touched_users
            on events.user_id = touched_users.user_id

    ),

    level_changes as (

        select level_changes.*
        from {{ ref('int_level_changes') }} as level_changes
        left semi join touched_users
            on level_changes.user_id = touched_users.user_id

    ),

    daily_activity as (

        select daily_activity.*
        from {{ ref('daily_activity') }} as daily_activity
        left semi join touched_users
            on daily_activity.user_id = touched_users.user_id

    ),

{%- else %}

    with events as (

        select * from {{ ref('stg_sparkify__events') }}

    ),

    level_changes as (

        select * from {{ ref('int_level_changes') }}

    ),

    daily_activity as (

        select * from {{ ref('daily_activity') }}

    ),

{%- endif %}

latest_profiles as (

    select
        user_id,
        max_by(
            struct(first_name, last_name, gender, location, city, state, browser, operating_system, device),
            struct(event_at, item_in_session)
        ) as latest,
        min(registered_at) as registered_at,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at,
        min_by(level, struct(event_at, item_in_session)) as first_level,
        max_by(level, struct(event_at, item_in_session)) as current_level,
        min(case when page = 'Cancellation Confirmation' then event_at end) as churned_at,
        min(case when page = 'Submit Downgrade' then event_at end) as first_downgrade_submitted_at
    from events
    group by user_id

),

profiles as (

    select
        latest_profiles.user_id,
        latest_profiles.latest.first_name,
        latest_profiles.latest.last_name,
        latest_profiles.latest.gender,
        latest_profiles.latest.location,
        latest_profiles.latest.city,
        latest_profiles.latest.state,
        latest_profiles.latest.browser,
        latest_profiles.latest.operating_system,
        latest_profiles.latest.device,
        latest_profiles.registered_at,
        latest_profiles.first_event_at,
        latest_profiles.last_event_at,
        latest_profiles.first_level,
        latest_profiles.current_level,
        latest_profiles.churned_at,
        latest_profiles.first_downgrade_submitted_at
    from latest_profiles

),

level_history as (

    select
        user_id,
        sum(case when change_type = 'upgrade' then 1 else 0 end) as upgrades,
        sum(case when change_type = 'downgrade' then 1 else 0 end) as downgrades,
        max(changed_at) as last_level_change_at,
        array_sort(collect_list(struct(changed_at, from_level, to_level, change_type))) as level_history
    from level_changes
    group by user_id

),

lifetime_activity as (

    select
        user_id,
        count(*) as active_days,
        sum(song_events) as songs,
        sum(sessions_started) as sessions,
        sum(listen_seconds) / 3600.0 as listen_hours
    from daily_activity
    group by user_id

),

final as (

    select
        profiles.user_id,
        profiles.first_name,
        profiles.last_name,
        profiles.gender,
        profiles.location,
        profiles.city,
        profiles.state,
        profiles.browser,
        profiles.operating_system,
        profiles.device,
        profiles.registered_at,
        profiles.first_event_at,
        profiles.last_event_at,
        profiles.first_level,
        profiles.current_level,
        level_history.last_level_change_at,
        profiles.churned_at,
        profiles.first_downgrade_submitted_at,
        coalesce(level_history.upgrades, 0) as upgrades,
        coalesce(level_history.downgrades, 0) as downgrades,
        coalesce(level_history.level_history, array()) as level_history,
        profiles.churned_at is not null as is_churned,
        coalesce(lifetime_activity.active_days, 0) as active_days,
        coalesce(lifetime_activity.songs, 0) as songs,
        coalesce(lifetime_activity.sessions, 0) as sessions,
        coalesce(lifetime_activity.listen_hours, 0) as listen_hours,
        current_timestamp() as updated_at
    from profiles
    left join level_history
        on profiles.user_id = level_history.user_id
    left join lifetime_activity
        on profiles.user_id = lifetime_activity.user_id

)

select * from final
