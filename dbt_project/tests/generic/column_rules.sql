{#- Every column rule of one model in one data test and one read of its rows, instead of one dbt test
    (one query, one read) per rule: on a small local master each query costs Spark's planning and job
    start-up more than its data. The rules are dbt's own, with the same meaning:
      unique: columns (or lists of columns, a composite key) whose non-null values occur once
      not_null: columns without nulls
      accepted_values: column -> the values it may hold (nulls allowed, as in dbt's accepted_values)
      relationships: column -> the model whose column of the same name holds every non-null value
    It returns one row per broken rule, `rule` naming it and `failing_rows` counting the rows that break
    it, and fails with their sum (`dbt test --store-failures` keeps the rows). -#}
{% test column_rules(model, unique=[], not_null=[], accepted_values={}, relationships={}) %}
{{ config(fail_calc='coalesce(sum(failing_rows), 0)') }}
{%- set rules = [] -%}
{%- for key in unique -%}
    {%- set columns = [key] if key is string else key -%}
    {%- if columns | length == 1 -%}
        {%- do rules.append(('unique(' ~ columns[0] ~ ')',
                             'count(' ~ columns[0] ~ ') - count(distinct ' ~ columns[0] ~ ')')) -%}
    {%- else -%}
        {%- do rules.append(('unique(' ~ columns | join(', ') ~ ')',
                             'count(*) - count(distinct struct(' ~ columns | join(', ') ~ '))')) -%}
    {%- endif -%}
{%- endfor -%}
{%- for column in not_null -%}
    {%- do rules.append(('not_null(' ~ column ~ ')', 'count_if(' ~ column ~ ' is null)')) -%}
{%- endfor -%}
{%- for column, values in accepted_values.items() -%}
    {%- set literals = [] -%}
    {%- for value in values -%}
        {%- do literals.append(("'" ~ value ~ "'") if value is string else (value | string | lower)) -%}
    {%- endfor -%}
    {%- do rules.append(('accepted_values(' ~ column ~ ')',
                         'count_if(' ~ column ~ ' not in (' ~ literals | join(', ') ~ '))')) -%}
{%- endfor %}

with per_rule as (
    {%- if rules %}
    select stack(
        {{ rules | length }},
        {%- for name, _ in rules %}
        '{{ name }}', rule_{{ loop.index }}{{ ',' if not loop.last }}
        {%- endfor %}
    ) as (rule, failing_rows)
    from (
        select
            {%- for _, expression in rules %}
            {{ expression }} as rule_{{ loop.index }}{{ ',' if not loop.last }}
            {%- endfor %}
        from {{ model }}
    ) as counts
    {%- endif %}
    {%- for column, parent in relationships.items() %}
    {{ 'union all' if rules or not loop.first }}
    select
        'relationships({{ column }} -> {{ parent.identifier }})' as rule,
        count(*) as failing_rows
    {#- `model` may be a filtered subquery with its own alias (a test's `where`). #}
    from (select * from {{ model }}) as child
    left anti join {{ parent }} as parent on child.{{ column }} = parent.{{ column }}
    where child.{{ column }} is not null
    {%- endfor %}
)

select
    rule,
    failing_rows
from per_rule
where failing_rows > 0

{% endtest %}
