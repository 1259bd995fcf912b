{#-
    One row per user per active day: how much they listened and what they did, by page category.

    Incremental: the dates int_events_sessionized rewrote since this table's last build are recomputed
    whole (a late event can move a session start to another day, and int rewrites the whole session).
-#}
{{
    config(
        incremental_strategy='insert_overwrite',
        partition_by=['activity_date'],
    )
}}

with events as (

    select * from {{ ref('int_events_sessionized') }}
    {%- if is_incremental() %}
        where {{ in_dates('event_date', dates_written_since_this_table(ref('int_events_sessionized'))) }}
    {%- endif %}

),

pages as (

    select * from {{ ref('sparkify_pages') }}

),

categorized as (

    select
        events.*,
        pages.category,
        pages.precedes_cancel
    from events
    inner join pages
        on events.page = pages.page

),

final as (

    select
        user_id,
        sum(case when category != 'cancel' then 1 else 0 end) as events,
        sum(case when starts_session then 1 else 0 end) as sessions_started,
        coalesce(sum(song_length_seconds), 0) as listen_seconds,
        {{ count_distinct('artist') }} as distinct_artists,
        {%- for category in activity_categories() %}
            sum(case when category = '{{ category }}' then 1 else 0 end) as {{ category }}_events,
        {%- endfor %}
        {%- for name, page in activity_pages() %}
            sum(case when page = '{{ page }}' then 1 else 0 end) as {{ name }}_events,
        {%- endfor %}
        sum(case when precedes_cancel then 1 else 0 end) as pre_cancel_events,
        sum(case when category = 'cancel' then 1 else 0 end) as cancel_events,
        min(event_at) as first_event_at,
        max(case when category != 'cancel' then event_at end) as last_event_at,
        max_by(level, struct(event_at, item_in_session)) as last_level,
        current_timestamp() as updated_at,
        event_date as activity_date
    from categorized
    group by
        user_id,
        event_date

)

select * from final
