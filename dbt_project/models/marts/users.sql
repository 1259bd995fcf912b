{#- One row per user: profile, subscription history, churn, and lifetime activity. -#}
with events as (

    select * from {{ ref('stg_sparkify__events') }}

),

level_changes as (

    select * from {{ ref('int_level_changes') }}

),

daily_activity as (

    select * from {{ ref('daily_activity') }}

),

profiles as (

    select
        user_id,
        max_by(first_name, struct(event_at, item_in_session)) as first_name,
        max_by(last_name, struct(event_at, item_in_session)) as last_name,
        max_by(gender, struct(event_at, item_in_session)) as gender,
        max_by(location, struct(event_at, item_in_session)) as location,
        max_by(city, struct(event_at, item_in_session)) as city,
        max_by(state, struct(event_at, item_in_session)) as state,
        max_by(browser, struct(event_at, item_in_session)) as browser,
        max_by(operating_system, struct(event_at, item_in_session)) as operating_system,
        max_by(device, struct(event_at, item_in_session)) as device,
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
        coalesce(lifetime_activity.listen_hours, 0) as listen_hours
    from profiles
    left join level_history
        on profiles.user_id = level_history.user_id
    left join lifetime_activity
        on profiles.user_id = lifetime_activity.user_id

)

select * from final
