{#-
    One row per (user, as_of_date) for every user who is active (an event in the
    `active_window_days` before as_of) and has not churned at as_of.

    No leakage: features use only daily activity strictly before as_of_date (as_of is midnight
    UTC, so an event at exactly as_of belongs to as_of_date and is excluded), and cancellation
    pages never feed a feature. Labels look at (as_of, as_of + churn_horizon_days] and are null
    when the data does not reach that far.

    Incremental: an as_of date is recomputed whole when events int_events_sessionized rewrote since this
    table's last build can change it (an event before as_of feeds its lifetime features; one within the
    horizon after it, its labels; the scoring date is the newest, so any such event reaches it), or when its row
    in int_as_of_dates changed (a label window closed, a new date). A build with nothing new writes nothing.
    Dates that are no longer as_of dates (the previous scoring date) are removed.
-#}
{{
    config(
        incremental_strategy='insert_overwrite',
        partition_by=['as_of_date'],
        post_hook="{{ clear_partitions('as_of_date', literal_list(
            'select distinct as_of_date from ' ~ this ~ ' where as_of_date not in (select as_of_date from '
            ~ ref('int_as_of_dates') ~ ')')) }}",
    )
}}

-- depends_on: {{ ref('int_events_sessionized') }}
{%- set incremental = is_incremental() %}
{%- if incremental %}
    {%- set touched_dates_query %}
        with first_rewritten_event as (

            select min(event_date) as event_date
            from {{ ref('int_events_sessionized') }}
            where updated_at > {{ written_since_this_table() }}

        ),

        built as (

            select distinct
                as_of_date,
                is_scoring_date,
                is_label_complete
            from {{ this }}

        )

        select as_of_dates.as_of_date
        from {{ ref('int_as_of_dates') }} as as_of_dates
        cross join first_rewritten_event
        left join built
            on as_of_dates.as_of_date = built.as_of_date
        where as_of_dates.as_of_date >= date_sub(first_rewritten_event.event_date, {{ var('churn_horizon_days') }})
            or built.as_of_date is null
            or built.is_scoring_date != as_of_dates.is_scoring_date
            or built.is_label_complete != as_of_dates.is_label_complete
    {%- endset %}
    {%- set dates = literal_list(touched_dates_query) %}
{%- endif %}
{%- set first_label_date = (dates | min if dates else "date '9999-12-31'") if incremental else "date '0001-01-01'" %}

with as_of_dates as (

    select * from {{ ref('int_as_of_dates') }}
    {%- if incremental %}
        where {{ in_dates('as_of_date', dates) }}
    {%- endif %}

),

daily_activity as (

    select * from {{ ref('daily_activity') }}

),

users as (

    select * from {{ ref('users') }}

),

downgrades as (

    {#- Labels look forward from as_of: an incremental run needs none before its first recomputed date. #}
    select
        user_id,
        event_at
    from {{ ref('stg_sparkify__events') }}
    where page = 'Submit Downgrade' and event_date >= {{ first_label_date }}

),

history as (

    select
        daily_activity.*,
        as_of_dates.as_of_date,
        as_of_dates.as_of_at,
        as_of_dates.observed_start_at,
        as_of_dates.observed_end_at,
        datediff(as_of_dates.as_of_date, daily_activity.activity_date) as days_before_as_of
    from as_of_dates
    inner join daily_activity
        on as_of_dates.as_of_date > daily_activity.activity_date

),

windowed as (

    select
        user_id,
        as_of_date,
        as_of_at,
        observed_start_at,
        observed_end_at,
        {%- for suffix, days in feature_windows() %}
            {%- for metric, expression in feature_metrics() %}
                {%- if days %}
                    sum(case when days_before_as_of <= {{ days }} then {{ expression }} else 0 end)
                        as {{ metric }}_{{ suffix }},
                {%- else %}
                    sum({{ expression }}) as {{ metric }}_{{ suffix }},
                {%- endif %}
            {%- endfor %}
        {%- endfor %}
        sum(case when days_before_as_of between 8 and 14 then song_events else 0 end) as songs_week_before,
        sum(case when days_before_as_of between 8 and 14 then 1 else 0 end) as active_days_week_before,
        max(last_event_at) as last_event_at,
        max_by(last_level, activity_date) as level_at_as_of
    from history
    group by
        user_id,
        as_of_date,
        as_of_at,
        observed_start_at,
        observed_end_at

),

eligible as (

    select
        windowed.*,
        {%- for suffix, window_days in feature_windows() if window_days %}
            cast(
                unix_seconds(windowed.observed_end_at)
                - unix_seconds(greatest(windowed.observed_start_at, windowed.as_of_at - {{ days(window_days) }}))
                as double
            ) / 86400 as observed_days_{{ suffix }},
        {%- endfor %}
        users.registered_at,
        users.first_event_at,
        users.churned_at
    from windowed
    inner join users
        on windowed.user_id = users.user_id
    where windowed.last_event_at >= windowed.as_of_at - {{ days(var('active_window_days')) }}
        and (users.churned_at is null or users.churned_at > windowed.as_of_at)

),

featured as (

    select
        {%- for name, expression in feature_scalars() %}
            {{ expression }} as {{ name }},
        {%- endfor %}
        *
    from eligible

),

future_downgrades as (

    select
        eligible.user_id,
        eligible.as_of_date,
        count(*) as downgrades
    from eligible
    inner join downgrades
        on eligible.user_id = downgrades.user_id
            and eligible.as_of_at < downgrades.event_at
            and downgrades.event_at <= eligible.as_of_at + {{ days(var('churn_horizon_days')) }}
    group by
        eligible.user_id,
        eligible.as_of_date

),

final as (

    select
        featured.user_id,
        featured.as_of_at,
        as_of_dates.is_scoring_date,
        as_of_dates.is_label_complete,
        case
            when not as_of_dates.is_label_complete then null
            when featured.churned_at <= featured.as_of_at + {{ days(var('churn_horizon_days')) }} then 1
            else 0
        end as churned_within_horizon,
        case
            when not as_of_dates.is_label_complete then null
            when future_downgrades.downgrades > 0 then 1
            else 0
        end as downgraded_within_horizon,
        {%- for suffix, days in feature_windows() %}
            {%- for metric, _ in feature_metrics() %}
                featured.{{ metric }}_{{ suffix }},
            {%- endfor %}
            {%- for ratio, numerator, denominator in feature_ratios() %}
                featured.{{ numerator }}_{{ suffix }}
                / nullif(featured.{{ denominator }}_{{ suffix }}, 0) as {{ ratio }}_{{ suffix }},
            {%- endfor %}
            {%- if days %}
                featured.observed_days_{{ suffix }},
                {%- for metric in per_day_metrics() %}
                    featured.{{ metric }}_{{ suffix }} / nullif(featured.observed_days_{{ suffix }}, 0)
                        as {{ metric }}_per_day_{{ suffix }},
                {%- endfor %}
            {%- endif %}
        {%- endfor %}
        {%- for name, _ in feature_scalars() %}
            featured.{{ name }},
        {%- endfor %}
        current_timestamp() as updated_at,
        {#- The partition column last, where Spark keeps it in a Parquet table. #}
        featured.as_of_date
    from featured
    inner join as_of_dates
        on featured.as_of_date = as_of_dates.as_of_date
    left join future_downgrades
        on featured.user_id = future_downgrades.user_id
            and featured.as_of_date = future_downgrades.as_of_date

)

select * from final
