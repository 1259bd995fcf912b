{#-
    Logged-in users' events, typed and renamed, one row per distinct event. Exact duplicates
    (the same event in several lines or files) keep their first load. Incremental: a run
    rebuilds only the event dates that the latest bronze loads touched.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='insert_overwrite',
        partition_by=['event_date'],
    )
}}

{%- if is_incremental() %}
    {%- set dates = literal_list('select distinct event_date from ' ~ ref('bronze_events')
        ~ ' where loaded_at > ' ~ loaded_since_this_table()) %}

    with bronze_events as (

        select * from {{ ref('bronze_events') }}
        where record_status = 'event' and {{ in_dates('event_date', dates) }}

    ),

{%- else %}

    with bronze_events as (

        select * from {{ ref('bronze_events') }}
        where record_status = 'event'

    ),

{%- endif %}

deduplicated as (

    {#- Duplicates share their event date: one shuffle by date serves both the dedup and the
        partitioned write (one file per date). #}
    select
        *,
        lag(event_id) over (
            partition by event_date
            order by event_id, loaded_at, source_file
        ) as previous_event_id
    from bronze_events

),

renamed as (

    select
        event_id,
        userId as user_id,
        sessionId as session_id,
        itemInSession as item_in_session,
        {{ epoch_ms_to_timestamp('ts') }} as event_at,
        page,
        auth,
        method,
        status as http_status,
        level,
        firstName as first_name,
        lastName as last_name,
        gender,
        {{ epoch_ms_to_timestamp('registration') }} as registered_at,
        location,
        trim(regexp_extract(location, '^(.*),[^,]*$', 1)) as city,
        trim(regexp_extract(location, ',\\s*([A-Z]{2})[^,]*$', 1)) as state,
        trim(regexp_extract(location, ',\\s*([^,]*)$', 1)) as states,
        trim(both '"' from userAgent) as user_agent,
        artist,
        song,
        length as song_length_seconds,
        source_file,
        loaded_at,
        event_date
    from deduplicated
    where previous_event_id is null or previous_event_id != event_id

),

final as (

    select
        event_id,
        user_id,
        session_id,
        item_in_session,
        event_at,
        page,
        auth,
        method,
        http_status,
        level,
        first_name,
        last_name,
        gender,
        registered_at,
        location,
        nullif(city, '') as city,
        nullif(state, '') as state,
        nullif(states, '') as states,
        user_agent,
        {{ user_agent_browser('user_agent') }} as browser,
        {{ user_agent_os('user_agent') }} as operating_system,
        {{ user_agent_device('user_agent') }} as device,
        artist,
        song,
        song_length_seconds,
        source_file,
        loaded_at,
        event_date
    from renamed

)

select * from final
