"""Which columns of `user_features` feed the model, and the whole-history features of the
lifetime protocol (the public projects' leaky setup, kept only for comparison)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from models_ml.errors import UsageError
from sparkify import features as registry

LABEL = "churned_within_horizon"
KEYS = ("user_id", "as_of_date")
NON_FEATURES = frozenset({
    "user_id", "as_of_date", "as_of_at", "is_scoring_date", "is_label_complete",
    LABEL, "downgraded_within_horizon",
})

# The default inputs, chosen by rolling-origin validation on es_small and es_medium (see
# README, "Churn model"). In eventsim a cancellation is one more page a user can land on, so
# exposure is the signal: log-outs and visits to the pages that lead to Cancel, sessions, and the
# thumbs-down rate. Counts are per observed day, so a window cut short by the start of the data
# compares with a full one. Trend, recency, tenure, adverts per song and the other pages added
# nothing out of time, or ranked inversely, and are left out.
COMPACT_FEATURES: tuple[str, ...] = (
    "logouts_per_day_28d",
    "pre_cancel_pages_per_day_28d",
    "sessions_per_day_28d",
    "thumbs_down_per_song_28d",
)

# The lifetime protocol's features, as the public projects build them: totals and rates over the
# whole history, tenure, and the span between a user's first and last event ("days active").
LIFETIME_FEATURES: tuple[str, ...] = (
    "songs_lifetime",
    "sessions_lifetime",
    "active_days_lifetime",
    "friends_added_lifetime",
    "help_pages_lifetime",
    "settings_pages_lifetime",
    "downgrade_pages_lifetime",
    "error_pages_lifetime",
    "thumbs_down_per_song_lifetime",
    "adverts_per_song_lifetime",
    "songs_per_active_day_lifetime",
    "activity_span_days",
    "tenure_days",
    "is_paid",
)

WINDOWS: dict[str, int | None] = {"7d": 7, "14d": 14, "28d": 28, "lifetime": None}


def feature_columns(df: DataFrame) -> list[str]:
    """Every numeric column of the mart that is not a key, flag or label."""
    numeric = ("int", "bigint", "double", "float", "decimal", "smallint", "tinyint")
    return [
        name for name, dtype in df.dtypes
        if name not in NON_FEATURES and dtype.split("(")[0] in numeric
    ]


def missing_features(available: list[str], wanted: tuple[str, ...]) -> list[str]:
    """The wanted columns the mart lacks, in the wanted order."""
    return [name for name in wanted if name not in available]


def choose_features(available: list[str], wanted: tuple[str, ...] = COMPACT_FEATURES) -> list[str]:
    """The compact set, or a clear error naming the columns the mart lacks."""
    missing = missing_features(available, wanted)
    if missing:
        raise UsageError(
            f"user_features lacks the feature column(s) {', '.join(missing)}: "
            "rebuild it with `make build`"
        )
    return list(wanted)


def model_frame(df: DataFrame, features: list[str]) -> DataFrame:
    """Keys, label and features as doubles: Spark ML wants doubles, the mart has decimals and ints."""
    label = F.col(LABEL).cast("double") if LABEL in df.columns else F.lit(None).cast("double")
    return df.select(
        *KEYS,
        label.alias(LABEL),
        *[F.col(name).cast("double").alias(name) for name in features],
    )


def labeled_rows(df: DataFrame) -> DataFrame:
    """Rows whose label horizon is complete: the only ones that can train or evaluate."""
    return df.where(F.col("is_label_complete") & F.col(LABEL).isNotNull())


def _window_sum(expression: str, days: int | None) -> Column:
    value = F.expr(expression)
    if days is None:
        return F.sum(value)
    return F.sum(F.when(F.col("days_before") <= days, value).otherwise(F.lit(0)))


def lifetime_features(daily_activity: DataFrame, users: DataFrame) -> DataFrame:
    """One row per user over the whole history, labelled with `is_churned` (leaky on purpose).

    Windows end at each user's own last active day, as in the public projects: a churner's
    history stops at the cancellation, so tenure and activity span carry the label.
    """
    ends = daily_activity.groupBy("user_id").agg(
        F.date_add(F.max("activity_date"), 1).alias("as_of_date")
    )
    history = daily_activity.join(ends, "user_id").withColumn(
        "days_before", F.datediff("as_of_date", "activity_date")
    )
    metrics = {name: m["sql"] for name, m in registry.project_vars()["features"]["metrics"].items()}
    ratios = {name: (r["numerator"], r["denominator"])
              for name, r in registry.project_vars()["features"]["ratios"].items()}
    sums = [
        _window_sum(expression, days).alias(f"{metric}_{suffix}")
        for suffix, days in WINDOWS.items()
        for metric, expression in metrics.items()
    ]
    aggregated = history.groupBy("user_id", "as_of_date").agg(
        *sums,
        F.sum(F.when(F.col("days_before").between(8, 14), F.col("song_events")).otherwise(0))
        .alias("songs_prev_7d"),
        F.sum(F.when(F.col("days_before").between(8, 14), 1).otherwise(0)).alias("active_days_prev_7d"),
        F.max("last_event_at").alias("last_event_at"),
        F.min("first_event_at").alias("history_start_at"),
        F.max_by("last_level", "activity_date").alias("last_level"),
    )
    ratio_cols = [
        (F.col(f"{num}_{suffix}") / F.when(F.col(f"{den}_{suffix}") != 0, F.col(f"{den}_{suffix}")))
        .alias(f"{ratio}_{suffix}")
        for suffix in WINDOWS
        for ratio, (num, den) in ratios.items()
    ]
    start = F.least(F.coalesce("registered_at", "first_event_at"), F.col("first_event_at"))
    users = users.select("user_id", "registered_at", "first_event_at", "is_churned")
    return aggregated.join(users, "user_id").select(
        "user_id",
        "as_of_date",
        F.col("is_churned").cast("int").alias(LABEL),
        *[F.col(f"{metric}_{suffix}") for suffix in WINDOWS for metric in metrics],
        *ratio_cols,
        "songs_prev_7d",
        (F.col("songs_7d") / F.when(F.col("songs_prev_7d") != 0, F.col("songs_prev_7d"))).alias("songs_trend_7d"),
        (F.col("active_days_7d") - F.col("active_days_prev_7d")).alias("active_days_change_7d"),
        ((F.unix_timestamp(F.to_timestamp("as_of_date")) - F.unix_timestamp("last_event_at")) / 86400.0)
        .alias("days_since_last_activity"),
        F.datediff("as_of_date", F.to_date(start)).alias("tenure_days"),
        ((F.unix_timestamp("last_event_at") - F.unix_timestamp("history_start_at")) / 86400.0)
        .alias("activity_span_days"),
        F.when(F.col("last_level") == "paid", 1).otherwise(0).alias("is_paid"),
    )
