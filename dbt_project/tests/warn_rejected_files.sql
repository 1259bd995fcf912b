{#- A file that is not loaded is never silent: the build warns with one row per file. -#}
{{ config(severity='warn') }}

select
    path,
    reason
from {{ ref('rejected_files') }}
