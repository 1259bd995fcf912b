-- Weekly churn rate by subscription level at as_of: `dbt compile` renders it under target/.
with user_features as (

    select * from {{ ref('user_features') }}
    where is_label_complete

),

final as (

    select
        as_of_date,
        is_paid,
        count(*) as active_users,
        sum(churned_within_horizon) as churned_users,
        avg(churned_within_horizon) as churn_rate
    from user_features
    group by
        as_of_date,
        is_paid

)

select * from final
order by
    as_of_date,
    is_paid
