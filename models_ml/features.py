"""Which columns of `user_features` feed the model, and the whole-history features of the
lifetime protocol (the public projects' leaky setup, kept only for comparison)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from models_ml.errors import UsageError

LABEL = "churned_within_horizon"
KEYS = ("user_id", "as_of_date")
NON_FEATURES = frozenset({
    "user_id", "as_of_date", "as_of_at", "is_scoring_date", "is_label_complete",
    LABEL, "downgraded_within_horizon",
})

# A compact set. In eventsim a cancellation is one more page a user can land on, so recent
# activity volume is the strongest signal (more pages, more chances to cancel), and a longer
# window estimates a user's pace better; the rest adds recency, friction pages, tastes and
# account facts. Prior leakage-free studies found compact, regularised sets beat all ~90
# columns: the 7/14/28-day and lifetime variants of one metric are collinear.
COMPACT_FEATURES: tuple[str, ...] = (
    "songs_14d",
    "songs_28d",
    "sessions_14d",
    "active_days_28d",
    "friends_added_28d",
    "help_pages_28d",
    "settings_pages_28d",
    "downgrade_pages_28d",
    "error_pages_28d",
    "thumbs_down_per_song_28d",
    "adverts_per_song_28d",
    "days_since_last_activity",
    "tenure_days",
    "is_paid",
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

# Per-window metrics of the mart, as expressions over `daily_activity` (mirrors the dbt macro
# `feature_metrics`), and the ratios built from them (`feature_ratios`).
METRICS: dict[str, str] = {
    "songs": "song_events",
    "sessions": "sessions_started",
    "active_days": "1",
    "listen_hours": "listen_seconds / 3600.0",
    "thumbs_up": "thumbs_up_events",
    "thumbs_down": "thumbs_down_events",
    "adverts": "advert_events",
    "friends_added": "add_friend_events",
    "playlist_adds": "add_playlist_events",
    "help_pages": "help_events",
    "error_pages": "error_events",
    "settings_pages": "settings_events",
    "upgrade_pages": "upgrade_events",
    "downgrade_pages": "downgrade_events",
}
RATIOS: dict[str, tuple[str, str]] = {
    "thumbs_up_per_song": ("thumbs_up", "songs"),
    "thumbs_down_per_song": ("thumbs_down", "songs"),
    "adverts_per_song": ("adverts", "songs"),
    "songs_per_session": ("songs", "sessions"),
    "songs_per_active_day": ("songs", "active_days"),
}
WINDOWS: dict[str, int | None] = {"7d": 7, "14d": 14, "28d": 28, "lifetime": None}


def feature_columns(df: DataFrame) -> list[str]:
    """Every numeric column of the mart that is not a key, flag or label."""
    numeric = ("int", "bigint", "double", "float", "decimal", "smallint", "tinyint")
    return [
        name for name, dtype in df.dtypes
        if name not in NON_FEATURES and dtype.split("(")[0] in numeric
    ]


def choose_features(available: list[str], wanted: tuple[str, ...] = COMPACT_FEATURES) -> list[str]:
    """The compact set, or a clear error naming the columns the mart lacks."""
    missing = [name for name in wanted if name not in available]
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
    sums = [
        _window_sum(expression, days).alias(f"{metric}_{suffix}")
        for suffix, days in WINDOWS.items()
        for metric, expression in METRICS.items()
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
    ratios = [
        (F.col(f"{num}_{suffix}") / F.when(F.col(f"{den}_{suffix}") != 0, F.col(f"{den}_{suffix}")))
        .alias(f"{ratio}_{suffix}")
        for suffix in WINDOWS
        for ratio, (num, den) in RATIOS.items()
    ]
    start = F.least(F.coalesce("registered_at", "first_event_at"), F.col("first_event_at"))
    users = users.select("user_id", "registered_at", "first_event_at", "is_churned")
    return aggregated.join(users, "user_id").select(
        "user_id",
        "as_of_date",
        F.col("is_churned").cast("int").alias(LABEL),
        *[F.col(f"{metric}_{suffix}") for suffix in WINDOWS for metric in METRICS],
        *ratios,
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
