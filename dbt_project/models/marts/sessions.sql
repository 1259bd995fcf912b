{#-
    One row per session (see int_events_sessionized for how sessions are cut).

    Incremental: the sessions of every (user, sessionId) that int_events_sessionized rewrote since this
    table's last build are recomputed, and the session dates that held or hold them are rewritten; the
    other sessions of those dates are kept as they were.
-#}
{{
    config(
        incremental_strategy='insert_overwrite',
        partition_by=['session_date'],
    )
}}

{%- set incremental = is_incremental() %}
{%- if incremental %}
    {%- set dates = dates_written_since_this_table(ref('int_events_sessionized')) %}
{%- endif %}

with events as (

    select * from {{ ref('int_events_sessionized') }}
    {%- if incremental %}
        where {{ in_dates('event_date', dates) }}
    {%- endif %}

),

pages as (

    select * from {{ ref('sparkify_pages') }}

),

{%- if incremental %}

    recomputed_events as (

        {#- int_events_sessionized rewrites every event of a pair that changed: these are whole pairs. #}
        select * from events
        where updated_at > {{ written_since_this_table() }}

    ),

    touched_pairs as (

        select distinct
            user_id,
            session_id
        from recomputed_events

    ),

    kept_rows as (

        {{ rows_of_untouched_pairs('session_date', dates) }}

    ),

{%- else %}

    recomputed_events as (

        select * from events

    ),

{%- endif %}

categorized as (

    select
        recomputed_events.*,
        pages.category
    from recomputed_events
    inner join pages
        on recomputed_events.page = pages.page

),

recomputed as (

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
        current_timestamp() as updated_at,
        min(event_date) as session_date
    from categorized
    group by
        session_key,
        user_id,
        session_id,
        session_part

),

final as (

    select * from recomputed
    {%- if incremental %}
        union all
        select * from kept_rows
    {%- endif %}

)

select * from final
