{#- Every change of subscription level: the first event at the new level, and the one before. -#}
{{ config(materialized='view') }}

with events as (

    select
        user_id,
        event_at,
        item_in_session,
        level
    from {{ ref('stg_sparkify__events') }}

),

with_previous_level as (

    select
        *,
        lag(level) over (partition by user_id order by event_at, item_in_session) as previous_level,
        lag(event_at) over (partition by user_id order by event_at, item_in_session) as previous_event_at
    from events

),

final as (

    select
        user_id,
        event_at as changed_at,
        previous_event_at as last_event_before_change_at,
        previous_level as from_level,
        level as to_level,
        concat_ws('-', user_id, cast(unix_millis(event_at) as string)) as level_change_id,
        case when level = 'paid' then 'upgrade' else 'downgrade' end as change_type
    from with_previous_level
    where previous_level != level

)

select * from final
