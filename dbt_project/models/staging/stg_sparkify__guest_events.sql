{#- Guest and logged-out events (empty userId), kept apart from users' events and counted. -#}
{{ config(materialized='view') }}

with bronze_events as (

    select * from {{ ref('bronze_events') }}
    where record_status = 'guest'

),

final as (

    select
        event_id,
        sessionId as session_id,
        itemInSession as item_in_session,
        {{ epoch_ms_to_timestamp('ts') }} as event_at,
        page,
        auth,
        method,
        status as http_status,
        level,
        line_count,
        source_file,
        loaded_at,
        event_date
    from bronze_events

)

select * from final
