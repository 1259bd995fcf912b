{#-
    Events with their session. A session is a (user, sessionId), split again wherever the user
    was idle for more than `session_gap_minutes`: eventsim reuses sessionIds, and a long silence
    inside one id is a new visit.

    Incremental: a (user, sessionId) with an event this table has not seen is recomputed whole (its
    parts can merge, split or renumber, also for events that arrive days late), and every date that
    holds one of its events is rewritten; the other pairs' rows of those dates are kept as they were.
-#}
{{
    config(
        incremental_strategy='insert_overwrite',
        partition_by=['event_date'],
    )
}}

{%- set incremental = is_incremental() %}
{%- if incremental %}
    {%- set since = loaded_since_this_table() %}
    {%- set dates = dates_of_pairs_loaded_since(ref('stg_sparkify__events'), since) %}
{%- endif %}

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
        loaded_at,
        event_date
    from {{ ref('stg_sparkify__events') }}
    {%- if incremental %}
        where {{ in_dates('event_date', dates) }}
    {%- endif %}

),

{%- if incremental %}

    touched_pairs as (

        select distinct
            user_id,
            session_id
        from events
        where loaded_at > {{ since }}

    ),

    recomputed_events as (

        select events.*
        from events
        left semi join touched_pairs
            on events.user_id = touched_pairs.user_id
                and events.session_id = touched_pairs.session_id

    ),

    kept_rows as (

        {{ rows_of_untouched_pairs('event_date', dates) }}

    ),

{%- else %}

    recomputed_events as (

        select * from events

    ),

{%- endif %}

with_previous_event as (

    select
        *,
        lag(event_at) over (
            partition by user_id, session_id
            order by event_at, item_in_session
        ) as previous_event_at
    from recomputed_events

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

sessionized as (

    {#- The partition column last, where Spark keeps it in a Parquet table. #}
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
        session_part,
        concat_ws('-', user_id, cast(session_id as string), cast(session_part as string)) as session_key,
        starts_session = 1 as starts_session,
        loaded_at,
        current_timestamp() as updated_at,
        event_date
    from numbered

),

final as (

    select * from sessionized
    {%- if incremental %}
        union all
        select * from kept_rows
    {%- endif %}

)

select * from final
