{#- Small expressions used in several models. -#}

{% macro epoch_ms_to_timestamp(column) -%}
    timestamp_millis({{ column }})
{%- endmacro %}

{#- Browser, operating system and device class from a user agent string (eventsim's agents are
    2014-era desktop browsers plus iPhone and iPad Safari). Order matters: Chromium and Chrome
    agents also say "Safari", and Trident is Internet Explorer. -#}
{% macro user_agent_browser(column) -%}
    case
        when {{ column }} is null then null
        when {{ column }} like '%Trident/%' or {{ column }} like '%MSIE %' then 'Internet Explorer'
        when {{ column }} like '%Firefox/%' then 'Firefox'
        when {{ column }} like '%Chromium/%' then 'Chromium'
        when {{ column }} like '%Chrome/%' then 'Chrome'
        when {{ column }} like '%GSA/%' then 'Google Search App'
        when {{ column }} like '%Safari/%' then 'Safari'
        else 'Other'
    end
{%- endmacro %}

{% macro user_agent_os(column) -%}
    case
        when {{ column }} is null then null
        when {{ column }} like '%iPhone%' or {{ column }} like '%iPad%' then 'iOS'
        when {{ column }} like '%Windows%' then 'Windows'
        when {{ column }} like '%Mac OS X%' then 'Mac OS X'
        when {{ column }} like '%Android%' then 'Android'
        when {{ column }} like '%Linux%' then 'Linux'
        else 'Other'
    end
{%- endmacro %}

{% macro user_agent_device(column) -%}
    case
        when {{ column }} is null then null
        when {{ column }} like '%iPad%' then 'tablet'
        when {{ column }} like '%iPhone%' or {{ column }} like '%Mobile%' then 'mobile'
        else 'desktop'
    end
{%- endmacro %}

{#- Page categories of the sparkify_pages seed that get a count column in the activity models.
    Cancellation pages are counted apart (`cancel_events`) and never feed a feature. -#}
{% macro activity_categories() -%}
    {{ return([
        'song', 'thumbs_up', 'thumbs_down', 'advert', 'add_friend', 'add_playlist',
        'navigation', 'help', 'error', 'settings', 'upgrade', 'downgrade', 'session',
    ]) }}
{%- endmacro %}

{#- Per-window feature metrics of user_features: (name, expression over daily_activity). -#}
{% macro feature_metrics() -%}
    {{ return([
        ('songs', 'song_events'),
        ('sessions', 'sessions_started'),
        ('active_days', '1'),
        ('listen_hours', 'listen_seconds / 3600.0'),
        ('thumbs_up', 'thumbs_up_events'),
        ('thumbs_down', 'thumbs_down_events'),
        ('adverts', 'advert_events'),
        ('friends_added', 'add_friend_events'),
        ('playlist_adds', 'add_playlist_events'),
        ('help_pages', 'help_events'),
        ('error_pages', 'error_events'),
        ('settings_pages', 'settings_events'),
        ('upgrade_pages', 'upgrade_events'),
        ('downgrade_pages', 'downgrade_events'),
    ]) }}
{%- endmacro %}

{#- Engagement ratios per window: (name, numerator metric, denominator metric). -#}
{% macro feature_ratios() -%}
    {{ return([
        ('thumbs_up_per_song', 'thumbs_up', 'songs'),
        ('thumbs_down_per_song', 'thumbs_down', 'songs'),
        ('adverts_per_song', 'adverts', 'songs'),
        ('songs_per_session', 'songs', 'sessions'),
        ('songs_per_active_day', 'songs', 'active_days'),
    ]) }}
{%- endmacro %}

{#- Window suffixes: 7d, 14d, 28d (from the feature_windows_days var) and lifetime. -#}
{% macro feature_windows() -%}
    {%- set windows = [] -%}
    {%- for days in var('feature_windows_days') -%}
        {%- do windows.append((days ~ 'd', days)) -%}
    {%- endfor -%}
    {%- do windows.append(('lifetime', none)) -%}
    {{ return(windows) }}
{%- endmacro %}

{% macro days(n) -%}
    make_interval(0, 0, 0, {{ n }})
{%- endmacro %}

{#- True when a table exists in the target schema: lets a mart read a table the ML script writes
    (churn_scores) before the first training run, instead of failing the build. -#}
{% macro table_exists(identifier) -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set relation = adapter.get_relation(database=none, schema=target.schema, identifier=identifier) -%}
    {{ return(relation is not none) }}
{%- endmacro %}
