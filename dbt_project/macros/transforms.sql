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

{#- Pages counted one by one in daily_activity (`<name>_events`), beside the categories. -#}
{% macro activity_pages() -%}
    {{ return([('logout', 'Logout'), ('home', 'Home')]) }}
{%- endmacro %}

{#- The feature registry (vars.features in dbt_project.yml) as lists the feature SQL loops over.
    Per-window metrics: (name, expression over a daily_activity row). -#}
{% macro feature_metrics() -%}
    {%- set metrics = [] -%}
    {%- for name, metric in var('features')['metrics'].items() -%}
        {%- do metrics.append((name, metric['sql'])) -%}
    {%- endfor -%}
    {{ return(metrics) }}
{%- endmacro %}

{#- Metrics that also get a per-observed-day rate in each day window. -#}
{% macro per_day_metrics() -%}
    {%- set metrics = [] -%}
    {%- for name, metric in var('features')['metrics'].items() if metric.get('per_day') -%}
        {%- do metrics.append(name) -%}
    {%- endfor -%}
    {{ return(metrics) }}
{%- endmacro %}

{#- Ratios per window: (name, numerator metric, denominator metric). -#}
{% macro feature_ratios() -%}
    {%- set ratios = [] -%}
    {%- for name, ratio in var('features')['ratios'].items() -%}
        {%- do ratios.append((name, ratio['numerator'], ratio['denominator'])) -%}
    {%- endfor -%}
    {{ return(ratios) }}
{%- endmacro %}

{#- One-value features: (name, expression over the windowed row). -#}
{% macro feature_scalars() -%}
    {%- set scalars = [] -%}
    {%- for name, scalar in var('features')['scalars'].items() -%}
        {%- do scalars.append((name, scalar['sql'])) -%}
    {%- endfor -%}
    {{ return(scalars) }}
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

{#- The number of distinct non-null values in a group. Next to other aggregates, count(distinct ...) makes
    Spark expand every row into one copy per distinct aggregate and aggregate twice; a set per group is one
    hash aggregation (daily_activity on es_medium, warm: 1.1 s against 2.0 s; sessions 1.1 s against 1.7 s). -#}
{% macro count_distinct(column) -%}
    size(collect_set({{ column }}))
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
