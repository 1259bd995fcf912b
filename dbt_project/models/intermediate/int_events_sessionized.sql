{#-
    Events with their session. A session is a (user, sessionId), split again wherever the user
    was idle for more than `session_gap_minutes`: eventsim reuses sessionIds, and a long silence
    inside one id is a new visit.
-#}
with events as (

    {#- Only what sessions and daily activity need: the wide profile columns stay in staging. #}
    select
        event_id,
        user_id,
        session_id,
        item_in_session,
        event_at,
        page,
        level,
        artist,
        song_length_seconds,
        event_date
    from {{ ref('stg_sparkify__events') }}

),

with_previous_event as (

    select
        *,
        lag(event_at) over (
            partition by user_id, session_id
            order by event_at, item_in_session
        ) as previous_event_at
    from events

),

flagged as (

    select
        *,
        case
            when previous_event_at is null then 1
            when timestampdiff(second, previous_event_at, event_at)
                > {{ var('session_gap_minutes') }} * 60 then 1
            else 0
        end as starts_session
    from with_previous_event

),

numbered as (

    select
        *,
        sum(starts_session) over (
            partition by user_id, session_id
            order by event_at, item_in_session
            rows between unbounded preceding and current row
        ) as session_part
    from flagged

),

final as (

    select
        * except (session_part, starts_session, previous_event_at),
        session_part,
        concat_ws('-', user_id, cast(session_id as string), cast(session_part as string)) as session_key,
        starts_session = 1 as starts_session
    from numbered

)

select * from final
