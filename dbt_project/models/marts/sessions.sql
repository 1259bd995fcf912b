{#- One row per session (see int_events_sessionized for how sessions are cut). -#}
with events as (

    select * from {{ ref('int_events_sessionized') }}

),

pages as (

    select * from {{ ref('sparkify_pages') }}

),

categorized as (

    select
        events.*,
        pages.category
    from events
    inner join pages
        on events.page = pages.page

),

final as (

    select
        session_key,
        user_id,
        session_id,
        session_part,
        min(event_at) as started_at,
        max(event_at) as ended_at,
        timestampdiff(second, min(event_at), max(event_at)) as duration_seconds,
        count(*) as events,
        sum(case when category = 'song' then 1 else 0 end) as songs,
        {{ count_distinct('artist') }} as distinct_artists,
        coalesce(sum(song_length_seconds), 0) as listen_seconds,
        {%- set counted = [
            'thumbs_up', 'thumbs_down', 'advert', 'add_friend', 'add_playlist', 'help', 'error', 'upgrade', 'downgrade',
        ] %}
        {%- for category in counted %}
            sum(case when category = '{{ category }}' then 1 else 0 end) as {{ category }}_events,
        {%- endfor %}
        min_by(level, struct(event_at, item_in_session)) as level_at_start,
        min(event_date) as session_date
    from categorized
    group by
        session_key,
        user_id,
        session_id,
        session_part

)

select * from final
