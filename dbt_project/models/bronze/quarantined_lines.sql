{#- The raw lines that failed validation, with the reason and the file they came from. -#}
{{ config(materialized='view') }}

with bronze_events as (

    select * from {{ ref('bronze_events') }}
    where record_status = 'quarantined'

),

final as (

    select
        source_file,
        line_hash,
        line_count,
        reject_reason,
        raw_line,
        loaded_at
    from bronze_events

)

select * from final
