"""A synthetic lakehouse with every table the dashboard reads, written without Spark.

The dashboard's unit and browser tests need all the tables (users, daily_activity, sessions,
user_features, churn_scores, model_runs and a model report) at a chosen size, in seconds and
without a JVM. The numbers are plausible, not realistic: churners listen less and meet more
thumbs down and adverts, so the charts and the at-risk list have a shape worth looking at.

    python tests/synthetic_lakehouse.py --users 2000 --home /tmp/demo-home
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from models_ml.candidates import MODELS  # the model names the ML script writes

log = logging.getLogger(__name__)

SCHEMA_DIR = "warehouse/sparkify.db"
HORIZON_DAYS = 14
RISK_CUTOFFS = {"high": 0.25, "medium": 0.10}

FIRST_NAMES = {
    "F": ["Ava", "Chloe", "Emma", "Grace", "Hannah", "Isabella", "Julia", "Lily", "Maya", "Mia",
          "Natalie", "Olivia", "Sofia", "Zoe", "Amelia", "Brooke", "Claire", "Elena", "Ivy", "Nora"],
    "M": ["Aaron", "Benjamin", "Caleb", "Daniel", "Ethan", "Gabriel", "Henry", "Isaac", "Jacob",
          "Liam", "Lucas", "Mason", "Noah", "Owen", "Ryan", "Samuel", "Thomas", "Wyatt", "Adrian",
          "Miles"],
}
LAST_NAMES = ["Adams", "Baker", "Campbell", "Diaz", "Edwards", "Fisher", "Garcia", "Hughes", "Ingram",
              "Johnson", "Kim", "Lopez", "Morgan", "Nguyen", "Ortiz", "Patel", "Quinn", "Reed",
              "Smith", "Turner", "Underwood", "Vasquez", "Walker", "Young", "Zimmerman", "Brooks",
              "Carter", "Foster", "Hayes", "Price"]
LOCATIONS = [
    ("Los Angeles-Long Beach-Anaheim", "CA"), ("New York-Newark-Jersey City", "NY-NJ-PA"),
    ("Dallas-Fort Worth-Arlington", "TX"), ("Houston-The Woodlands-Sugar Land", "TX"),
    ("Chicago-Naperville-Elgin", "IL-IN-WI"), ("Phoenix-Mesa-Scottsdale", "AZ"),
    ("Boston-Cambridge-Newton", "MA-NH"), ("Miami-Fort Lauderdale-West Palm Beach", "FL"),
    ("Seattle-Tacoma-Bellevue", "WA"), ("Atlanta-Sandy Springs-Roswell", "GA"),
    ("Denver-Aurora-Lakewood", "CO"), ("San Francisco-Oakland-Hayward", "CA"),
    ("Detroit-Warren-Dearborn", "MI"), ("Minneapolis-St. Paul-Bloomington", "MN-WI"),
    ("Charlotte-Concord-Gastonia", "NC-SC"), ("Portland-Vancouver-Hillsboro", "OR-WA"),
    ("St. Louis", "MO-IL"), ("Tampa-St. Petersburg-Clearwater", "FL"),
    ("Raleigh", "NC"), ("Salt Lake City", "UT"),
]
BROWSERS = ["Chrome", "Firefox", "Safari", "IE"]
SYSTEMS = ["Windows", "Mac OS X", "Linux", "iOS"]


def make_lakehouse(home: str | Path, users: int = 400, start: dt.date = dt.date(2018, 10, 1),
                   days: int = 63, seed: int = 7, delta_tables: tuple[str, ...] = ()) -> Path:
    """Write all the tables under `home`/warehouse/sparkify.db and a model report; return home."""
    home = Path(home)
    frames = build_frames(users=users, start=start, days=days, seed=seed, home=home)
    for name, (frame, partition) in frames.items():
        if name in ("curves", "model_meta"):
            continue
        write_table(home, name, frame, partition_cols=partition, delta=name in delta_tables)
    meta = frames["model_meta"][0]
    model = home / "models" / meta["run_id"]
    model.mkdir(parents=True, exist_ok=True)
    (model / "model.json").write_text(json.dumps(meta, indent=1))
    (home / "models" / "latest").write_text(meta["run_id"] + "\n")
    for run_id, curves in frames["curves"][0].items():
        report = home / "reports" / run_id
        report.mkdir(parents=True, exist_ok=True)
        (report / "curves.json").write_text(json.dumps(curves))
    return home


def table_dir(home: str | Path, name: str) -> Path:
    return Path(home) / SCHEMA_DIR / name


def write_table(home: str | Path, name: str, frame: pd.DataFrame | pa.Table,
                partition_cols: list[str] | None = None, delta: bool = False) -> Path:
    """Replace one table with `frame`, as Parquet (optionally hive-partitioned) or Delta."""
    path = table_dir(home, name)
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if delta:
        from deltalake import write_deltalake

        write_deltalake(str(path), table, partition_by=partition_cols or None)
    elif partition_cols:
        pq.write_to_dataset(table, str(path), partition_cols=partition_cols)
    else:
        path.mkdir()
        pq.write_table(table, str(path / "part-00000.snappy.parquet"))
    return path


def build_frames(users: int, start: dt.date, days: int, seed: int, home: Path) -> dict:
    rng = np.random.default_rng(seed)
    n, d = users, days
    start_ts = pd.Timestamp(start)
    ids = np.array([str(i) for i in range(1, n + 1)])

    # --- per-user traits -------------------------------------------------------------------
    gender = rng.choice(["F", "M"], size=n)
    first = np.where(gender == "F", rng.choice(FIRST_NAMES["F"], n), rng.choice(FIRST_NAMES["M"], n))
    last = rng.choice(LAST_NAMES, n)
    loc = rng.integers(0, len(LOCATIONS), n)
    city = np.array([LOCATIONS[i][0] for i in loc])
    state = np.array([LOCATIONS[i][1] for i in loc])
    first_day = np.where(rng.random(n) < 0.8, 0, rng.integers(0, d // 2, n))
    registered_at = (start_ts + pd.to_timedelta(first_day, "D")
                     - pd.to_timedelta(rng.integers(1, 240 * 24, n), "h"))
    churner = rng.random(n) < 0.22
    churn_day = np.where(churner, first_day + 5 + (rng.random(n) * (d - 6 - first_day)).astype(int), -1)
    churn_day = np.where(churn_day >= d, d - 1, churn_day)
    last_day = np.where(churner, churn_day, d - 1)
    p_active = np.clip(rng.beta(2.2, 2.0, n) * (np.where(churner, 0.7, 1.0)), 0.05, 0.95)
    song_rate = np.exp(rng.normal(np.log(38), 0.55, n)) * np.where(churner, 0.75, 1.0)
    td_rate = np.clip(np.exp(rng.normal(np.log(0.011), 0.5, n)) * np.where(churner, 1.8, 1.0), 0, 0.2)
    ad_rate = np.clip(np.exp(rng.normal(np.log(0.045), 0.5, n)) * np.where(churner, 1.6, 1.0), 0, 0.4)
    first_paid = rng.random(n) < 0.35
    change_day = rng.integers(1, d, n)
    changes = np.where(first_paid, rng.random(n) < 0.15, rng.random(n) < 0.30)
    changes &= (change_day > first_day) & (change_day <= last_day)

    day_idx = np.arange(d)
    paid = np.where(changes[:, None] & (day_idx[None, :] >= change_day[:, None]),
                    ~first_paid[:, None], first_paid[:, None])
    active = ((day_idx[None, :] >= first_day[:, None]) & (day_idx[None, :] <= last_day[:, None])
              & (rng.random((n, d)) < p_active[:, None]))
    late = first_day > 0  # users who join during the window start with an active day
    active[np.flatnonzero(late), first_day[late]] = True
    active[np.flatnonzero(~active.any(axis=1)), d - 1] = True
    active[churner, churn_day[churner]] = True

    # --- daily_activity: one row per active (user, day) --------------------------------------
    u, day = np.nonzero(active)
    m = len(u)
    songs = rng.poisson(song_rate[u])
    is_paid_row = paid[u, day]
    thumbs_down = rng.binomial(songs, td_rate[u])
    adverts = np.where(is_paid_row, rng.binomial(songs, 0.003), rng.binomial(songs, ad_rate[u]))
    sessions_started = 1 + rng.poisson(0.6, m)
    start_hour = rng.integers(6, 22, m)
    first_event = (start_ts + pd.to_timedelta(day, "D") + pd.to_timedelta(start_hour, "h")
                   + pd.to_timedelta(rng.integers(0, 3600, m), "s"))
    listen = songs * rng.normal(246.0, 12.0, m).clip(180)
    span = pd.to_timedelta(np.minimum(listen * 1.15 + 120 * sessions_started, 3600 * 5), "s")
    upgrade_ev = (changes & ~first_paid)[u] & (change_day[u] == day)
    downgrade_ev = (changes & first_paid)[u] & (change_day[u] == day)
    cancel = churner[u] & (churn_day[u] == day)
    daily = pd.DataFrame({
        "user_id": ids[u],
        "activity_date": (start_ts + pd.to_timedelta(day, "D")).date,
        "events": songs + rng.poisson(songs * 0.22 + 4),
        "sessions_started": sessions_started,
        "listen_seconds": listen,
        "distinct_artists": np.maximum((songs * 0.86).astype(int), np.minimum(songs, 1)),
        "song_events": songs,
        "thumbs_up_events": rng.binomial(songs, 0.055),
        "thumbs_down_events": thumbs_down,
        "advert_events": adverts,
        "add_friend_events": rng.poisson(0.35, m),
        "add_playlist_events": rng.binomial(songs, 0.025),
        "navigation_events": rng.poisson(songs * 0.05 + 1.5),
        "help_events": rng.poisson(0.12, m),
        "error_events": rng.poisson(0.02, m),
        "settings_events": rng.poisson(0.1, m),
        "upgrade_events": upgrade_ev.astype(int) * 2,
        "downgrade_events": downgrade_ev.astype(int) * 2,
        "session_events": rng.poisson(0.4, m),
        "cancel_events": cancel.astype(int) * 2,
        "first_event_at": first_event,
        "last_event_at": first_event + span,
        "last_level": np.where(is_paid_row, "paid", "free"),
    })

    # --- sessions ------------------------------------------------------------------------------
    rep = np.repeat(np.arange(m), sessions_started)
    part_of_day = np.concatenate([np.arange(k) for k in sessions_started]) if m else np.array([], int)
    per = songs[rep] // sessions_started[rep] + (part_of_day < songs[rep] % sessions_started[rep])
    s_start = first_event[rep] + pd.to_timedelta(part_of_day * 2, "h")
    s_dur = (per * 246 + rng.integers(30, 600, len(rep))).astype(np.int64)
    session_id = (np.arange(len(rep)) % 997) + 1
    users_rep = ids[u[rep]]
    sessions = pd.DataFrame({
        "session_key": pd.Series(users_rep) + "-" + pd.Series(session_id).astype(str) + "-"
        + pd.Series(np.arange(len(rep))).astype(str),
        "user_id": users_rep,
        "session_id": session_id,
        "session_part": 1,
        "started_at": s_start,
        "ended_at": s_start + pd.to_timedelta(s_dur, "s"),
        "duration_seconds": s_dur,
        "events": per + rng.poisson(per * 0.2 + 2),
        "songs": per,
        "distinct_artists": (per * 0.9).astype(int),
        "listen_seconds": per * 246.0,
        "thumbs_up_events": rng.binomial(per, 0.055),
        "thumbs_down_events": rng.binomial(per, td_rate[u[rep]]),
        "advert_events": np.where(is_paid_row[rep], 0, rng.binomial(per, ad_rate[u[rep]])),
        "add_friend_events": rng.poisson(0.2, len(rep)),
        "add_playlist_events": rng.binomial(per, 0.025),
        "help_events": rng.poisson(0.08, len(rep)),
        "error_events": rng.poisson(0.01, len(rep)),
        "upgrade_events": 0,
        "downgrade_events": 0,
        "level_at_start": np.where(is_paid_row[rep], "paid", "free"),
        "session_date": (start_ts + pd.to_timedelta(day[rep], "D")).date,
    })

    # --- users -----------------------------------------------------------------------------------
    def per_user(values: np.ndarray) -> np.ndarray:
        return np.bincount(u, weights=values, minlength=n)

    first_row = np.full(n, -1)
    last_row = np.full(n, -1)
    first_row[u[::-1]] = np.arange(m)[::-1]
    last_row[u] = np.arange(m)
    churned_at = np.where(churner, (start_ts + pd.to_timedelta(churn_day, "D")
                                    + pd.to_timedelta(20, "h")).values, np.datetime64("NaT"))
    change_at = start_ts + pd.to_timedelta(change_day, "D") + pd.to_timedelta(13, "h")
    history = [
        [{"changed_at": change_at[i].to_pydatetime(),
          "from_level": "paid" if first_paid[i] else "free",
          "to_level": "free" if first_paid[i] else "paid",
          "change_type": "downgrade" if first_paid[i] else "upgrade"}] if changes[i] else []
        for i in range(n)
    ]
    history_type = pa.list_(pa.struct([("changed_at", pa.timestamp("us")), ("from_level", pa.string()),
                                       ("to_level", pa.string()), ("change_type", pa.string())]))
    user_frame = pd.DataFrame({
        "user_id": ids, "first_name": first, "last_name": last, "gender": gender,
        "location": [f"{c}, {s}" for c, s in zip(city, state)], "city": city, "state": state,
        "browser": rng.choice(BROWSERS, n), "operating_system": rng.choice(SYSTEMS, n),
        "device": rng.choice(["desktop", "mobile"], n, p=[0.85, 0.15]),
        "registered_at": registered_at,
        "first_event_at": daily["first_event_at"].to_numpy()[first_row],
        "last_event_at": daily["last_event_at"].to_numpy()[last_row],
        "first_level": np.where(first_paid, "paid", "free"),
        "current_level": np.where(paid[np.arange(n), last_day], "paid", "free"),
        "upgrades": (changes & ~first_paid).astype(int),
        "downgrades": (changes & first_paid).astype(int),
        "last_level_change_at": np.where(changes, change_at.values, np.datetime64("NaT")),
        "is_churned": churner,
        "churned_at": churned_at,
        "active_days": per_user(np.ones(m)).astype(int),
        "songs": per_user(songs).astype(int),
        "sessions": per_user(sessions_started).astype(int),
        "listen_hours": per_user(listen) / 3600.0,
    })
    user_table = pa.Table.from_pandas(user_frame, preserve_index=False)
    user_table = user_table.add_column(
        user_table.schema.get_field_index("last_level_change_at") + 1, "level_history",
        pa.array(history, type=history_type))

    # --- user_features at weekly as-of dates -------------------------------------------------------
    features, as_of_days = _features(n, d, ids, active, paid, first_day, registered_at, start_ts,
                                     churner, churn_day, daily, u, day)

    # --- model runs, scores and curves ----------------------------------------------------------------
    runs, curves = _model_runs(home, start, d, as_of_days, rng)
    scores = _scores(features, runs, rng)
    return {
        "users": (user_table, None),
        "customers": (_customers(user_table, daily, scores), None),
        "model_backtests": (_backtests(runs, features, rng), None),
        "daily_activity": (daily, None),
        "sessions": (sessions, None),
        "user_features": (features, None),
        "churn_scores": (scores, ["as_of_date"]),
        "model_runs": (runs, None),
        "curves": (curves, None),
        "model_meta": (_model_meta(runs, features), None),
    }


def _features(n, d, ids, active, paid, first_day, registered_at, start_ts, churner, churn_day,
              daily, u, day):
    songs = np.zeros((n, d))
    songs[u, day] = daily["song_events"].to_numpy()
    td = np.zeros((n, d))
    td[u, day] = daily["thumbs_down_events"].to_numpy()
    ads = np.zeros((n, d))
    ads[u, day] = daily["advert_events"].to_numpy()
    sess = np.zeros((n, d))
    sess[u, day] = daily["sessions_started"].to_numpy()

    def cum(a):
        return np.concatenate([np.zeros((n, 1)), np.cumsum(a, axis=1)], axis=1)

    c_songs, c_td, c_ads, c_act, c_sess = cum(songs), cum(td), cum(ads), cum(active.astype(float)), cum(sess)
    as_of_days = list(range(7, d, 7)) + [d]
    last_active = np.where(active, np.arange(d)[None, :], -1)
    rows = []
    for a in as_of_days:
        def window(c, w, a=a):
            return c[:, a] - c[:, max(a - w, 0)]

        act28 = window(c_act, 28)
        eligible = (act28 > 0) & ~(churner & (churn_day < a))
        songs28, td28, ads28 = window(c_songs, 28), window(c_td, 28), window(c_ads, 28)
        with np.errstate(divide="ignore", invalid="ignore"):
            frame = pd.DataFrame({
                "user_id": ids,
                "as_of_date": (start_ts + pd.Timedelta(days=a)).date(),
                "is_scoring_date": a == d,
                "is_label_complete": a + HORIZON_DAYS <= d,
                "churned_within_horizon": (churner & (churn_day >= a)
                                           & (churn_day < a + HORIZON_DAYS)).astype(np.int32),
                "songs_7d": window(c_songs, 7).astype(np.int64),
                "songs_28d": songs28.astype(np.int64),
                "sessions_28d": window(c_sess, 28).astype(np.int64),
                "active_days_7d": window(c_act, 7).astype(np.int64),
                "active_days_28d": act28.astype(np.int64),
                "thumbs_down_28d": td28.astype(np.int64),
                "adverts_28d": ads28.astype(np.int64),
                "thumbs_down_per_song_28d": np.where(songs28 > 0, td28 / songs28, np.nan),
                "adverts_per_song_28d": np.where(songs28 > 0, ads28 / songs28, np.nan),
                "songs_per_active_day_28d": np.where(act28 > 0, songs28 / act28, np.nan),
                "songs_per_session_28d": np.where(window(c_sess, 28) > 0, songs28 / window(c_sess, 28), np.nan),
                "songs_lifetime": c_songs[:, a].astype(np.int64),
                "active_days_lifetime": c_act[:, a].astype(np.int64),
                "days_since_last_activity": (a - last_active[:, :a].max(axis=1)).astype(np.int64),
                "tenure_days": ((start_ts + pd.Timedelta(days=a)) - registered_at).days.to_numpy()
                .astype(np.int64),
                "is_paid": paid[:, a - 1].astype(np.int64),
            })
        rows.append(frame[eligible])
    features = pd.concat(rows, ignore_index=True)
    return features, as_of_days


def _model_runs(home: Path, start: dt.date, d: int, as_of_days: list[int], rng) -> tuple[pd.DataFrame, dict]:
    end = start + dt.timedelta(days=d)
    dates = [start + dt.timedelta(days=a) for a in as_of_days]
    specs = [
        ("run-20181204-time-a", "time", dt.datetime.combine(end, dt.time(6, 5)), "gbt", 0.0),
        ("run-20181204-lifetime", "lifetime", dt.datetime.combine(end, dt.time(6, 40)), "rf", 0.2),
        ("run-20181205-time-b", "time", dt.datetime.combine(end, dt.time(9, 15)) + dt.timedelta(days=1),
         "logistic_regression", 0.02),
    ]
    features = ["thumbs_down_per_song_28d", "adverts_per_song_28d", "days_since_last_activity",
                "active_days_28d", "songs_per_active_day_28d", "songs_7d", "tenure_days", "is_paid"]
    rows, curves = [], {}
    for run_id, protocol, started, selected, lift in specs:
        metrics, run_curves = [], {}
        for k, model in enumerate(MODELS):
            quality = 0.0 if model == "baseline" else 0.03 + 0.012 * k + lift
            roc = min(0.6 + quality, 0.95)
            auc_pr = min(0.09 + quality * 1.4, 0.9)
            metrics.append({
                "model": model, "params": json.dumps({"regParam": 0.01} if "regression" in model else {}),
                "auc_pr": auc_pr, "roc_auc": roc, "precision": auc_pr * 1.1, "recall": 0.45 + quality,
                "f1": 0.2 + quality, "precision_at_top10": auc_pr * 1.6, "brier": 0.048 - quality / 20,
                "weighted_f1": 0.9 + quality / 10, "accuracy": 0.92 + quality / 20,
                "train_seconds": 2.0 + 5 * k, "is_selected": model == selected,
            })
            run_curves[model] = _curve_points(roc, auc_pr, features, rng)
        rows.append({
            "run_id": run_id, "started_at": started, "finished_at": started + dt.timedelta(minutes=11),
            "git_commit": "abc1234", "protocol": protocol, "data_start": start, "data_end": end,
            "train_as_of": dates[:-4], "validation_as_of": dates[-4:-3], "test_as_of": dates[-3:-2],
            "features": features, "train_rows": 5000, "validation_rows": 900, "test_rows": 880,
            "test_positives": 41, "prevalence": 0.047, "selected_model": selected, "threshold": 0.18,
            "threshold_rule": "maximise F1 on validation", "calibration": "isotonic",
            "risk_bands": json.dumps(RISK_CUTOFFS),
            "model_path": str(home / "models" / run_id), "report_path": str(home / "reports" / run_id),
            "metrics": metrics,
        })
        curves[run_id] = {"models": run_curves}
    return pd.DataFrame(rows), curves


def _model_meta(runs: pd.DataFrame, features: pd.DataFrame) -> dict:
    """model.json of the newest run, with the keys the what-if page reads: the inputs, their
    importance (thumbs down per song first), 1st-99th percentile ranges and medians."""
    run = runs.iloc[-1]
    inputs = list(run["features"])
    weights = np.arange(len(inputs), 0, -1, dtype=float)
    values = {f: pd.to_numeric(features[f], errors="coerce").astype(float).dropna() for f in inputs}
    return {
        "run_id": run["run_id"], "model": run["selected_model"], "features": inputs,
        "importance": dict(zip(inputs, (weights / weights.sum()).tolist())),
        "feature_ranges": {f: [float(v.quantile(0.01)), float(v.quantile(0.99))] for f, v in values.items()},
        "medians": {f: float(v.median()) for f, v in values.items()},
        "risk_bands": RISK_CUTOFFS,
    }


def _curve_points(roc: float, auc_pr: float, features: list[str], rng) -> dict:
    k = roc / (1 - roc)
    fpr = np.linspace(0, 1, 41)
    tpr = fpr ** (1 / k)
    recall = np.linspace(0.02, 1, 40)
    precision = np.clip(auc_pr * 2.2 * (1 - recall) ** 1.5 + 0.047, 0, 1)
    predicted = np.array([0.02, 0.05, 0.09, 0.14, 0.22, 0.35])
    importance = np.sort(rng.random(len(features)))[::-1]
    # The layout models_ml/report.py writes: curves per model plus the headline numbers.
    return {
        "auc_pr": auc_pr, "roc_auc": roc,
        "pr": {"recall": recall.round(4).tolist(), "precision": precision.round(4).tolist()},
        "roc": {"fpr": fpr.round(4).tolist(), "tpr": tpr.round(4).tolist()},
        "calibration": {"predicted": predicted.tolist(),
                        "observed": (predicted * rng.normal(1, 0.15, 6)).clip(0, 1).round(4).tolist()},
        "feature_importance": dict(zip(features, (importance / importance.sum()).round(4).tolist())),
    }


def _scores(features: pd.DataFrame, runs: pd.DataFrame, rng) -> pd.DataFrame:
    as_of = sorted(features["as_of_date"].unique())[-3:]
    latest_run = runs.iloc[-1]
    older_run = runs.iloc[0]
    frames = []
    for date in as_of:
        f = features[features["as_of_date"] == date].reset_index(drop=True)
        med = {c: float(np.nanmedian(f[c])) for c in REASON_FEATURES}
        td = f["thumbs_down_per_song_28d"].fillna(med["thumbs_down_per_song_28d"])
        ad = f["adverts_per_song_28d"].fillna(med["adverts_per_song_28d"])
        logit = (-3.4 + 55 * td + 9 * ad + 0.11 * f["days_since_last_activity"]
                 - 0.05 * f["active_days_28d"] + rng.normal(0, 0.5, len(f)))
        prob = 1 / (1 + np.exp(-logit))
        reasons = [_reasons(row, med) for row in f[list(REASON_FEATURES)].itertuples(index=False)]
        for run, shift, hours in ((older_run, 0.03, 0), (latest_run, 0.0, 30)):
            if run is older_run and date != as_of[-1]:
                continue
            p = np.clip(prob + shift, 0, 1)
            frames.append(pd.DataFrame({
                "user_id": f["user_id"],
                "as_of_date": date,
                "churn_probability": p,
                "risk_band": np.where(p >= RISK_CUTOFFS["high"], "high",
                                      np.where(p >= RISK_CUTOFFS["medium"], "medium", "low")),
                "reason_1": [r[0]["text"] if len(r) > 0 else None for r in reasons],
                "reason_2": [r[1]["text"] if len(r) > 1 else None for r in reasons],
                "reason_3": [r[2]["text"] if len(r) > 2 else None for r in reasons],
                "reasons": reasons,
                "model_run_id": run["run_id"],
                "scored_at": pd.Timestamp(date) + pd.Timedelta(hours=6 + hours),
            }))
    return pd.concat(frames, ignore_index=True)


# The activity figures the customers mart sets against the population scored at the same as_of.
COMPARED = ("active_days", "songs_per_active_day", "sessions", "listen_hours", "songs_7d",
            "thumbs_down_per_100_songs", "adverts_per_100_songs")


def _customers(user_table: pa.Table, daily: pd.DataFrame, scores: pd.DataFrame) -> pa.Table:
    """The dbt `customers` mart's columns, computed the way customers.sql defines them."""
    users = user_table.to_pandas()
    out = users.copy()
    out["name"] = (out["first_name"].fillna("") + " " + out["last_name"].fillna("")).str.strip()
    start = pd.concat([out["registered_at"], out["first_event_at"]], axis=1).min(axis=1)
    out["tenure_days"] = (out["last_event_at"].dt.normalize() - start.dt.normalize()).dt.days
    out["days_since_last_event"] = (out["last_event_at"].max().normalize()
                                    - out["last_event_at"].dt.normalize()).dt.days
    dates = pd.to_datetime(daily["activity_date"])
    recent = daily[dates > dates.max() - pd.Timedelta(days=7)]
    totals = daily.groupby("user_id").agg(thumbs_up=("thumbs_up_events", "sum"),
                                          thumbs_down=("thumbs_down_events", "sum"),
                                          adverts=("advert_events", "sum"))
    totals["songs_7d"] = recent.groupby("user_id")["song_events"].sum()
    totals["active_days_7d"] = recent.groupby("user_id").size()
    out = out.merge(totals, left_on="user_id", right_index=True, how="left")
    out[["songs_7d", "active_days_7d"]] = out[["songs_7d", "active_days_7d"]].fillna(0).astype(int)
    songs = out["songs"].where(out["songs"] > 0)
    out["songs_per_active_day"] = out["songs"] / out["active_days"].where(out["active_days"] > 0)
    out["thumbs_down_per_100_songs"] = 100.0 * out["thumbs_down"] / songs
    out["adverts_per_100_songs"] = 100.0 * out["adverts"] / songs
    latest = scores.sort_values(["as_of_date", "scored_at"], kind="stable").drop_duplicates("user_id", keep="last")
    latest = latest[["user_id", "as_of_date", "churn_probability", "risk_band", "reason_1", "reason_2",
                     "reason_3", "model_run_id", "scored_at"]].rename(columns={"as_of_date": "scored_as_of_date"})
    latest["is_current_score"] = latest["scored_as_of_date"] == scores["as_of_date"].max()
    out = out.merge(latest, on="user_id", how="left")
    population = scores[["user_id", "as_of_date"]].drop_duplicates().merge(out[["user_id", *COMPARED]],
                                                                           on="user_id")
    medians = population.groupby("as_of_date")[list(COMPARED)].median().add_prefix("median_")
    medians["median_population_size"] = population.groupby("as_of_date").size()
    out = out.merge(medians, left_on="scored_as_of_date", right_index=True, how="left")
    for metric in COMPARED:
        out[f"{metric}_vs_median"] = out[metric] / out[f"median_{metric}"].where(out[f"median_{metric}"] != 0)
    table = pa.Table.from_pandas(out.drop(columns=["level_history"]), preserve_index=False)
    return table.append_column("level_history", user_table.column("level_history"))


def _backtests(runs: pd.DataFrame, features: pd.DataFrame, rng) -> pd.DataFrame:
    """A model_backtests table in the layout models_ml.backtest writes: one older and one latest
    rolling backtest, each with a row per snapshot and a pooled row."""
    dates = sorted(pd.to_datetime(features["as_of_date"]).dt.date.unique())[2:-2]
    rows = []
    for k, created in enumerate((pd.Timestamp(runs["started_at"].min()), pd.Timestamp(runs["started_at"].max()))):
        backtest_id = f"backtest-{created:%Y%m%dT%H%M%S}"
        common = {"backtest_id": backtest_id, "created_at": created, "kind": "rolling", "model": "logreg",
                  "model_source": runs["run_id"].iloc[-1], "train_as_of_first": dates[0] - dt.timedelta(days=7)}
        total_rows = total_pos = 0
        for date in dates:
            n_rows = int(rng.integers(250, 400))
            positives = int(rng.integers(10, 25))
            total_rows, total_pos = total_rows + n_rows, total_pos + positives
            prevalence = positives / n_rows
            ap = prevalence * float(rng.uniform(1.8, 3.5))
            rows.append({**common, "scope": "snapshot", "as_of_date": date,
                         "train_as_of_last": date - dt.timedelta(days=HORIZON_DAYS),
                         "rows": n_rows, "positives": positives, "prevalence": prevalence,
                         "roc_auc": float(rng.uniform(0.62, 0.78)) + 0.02 * k,
                         "average_precision": ap, "ap_lift": ap / prevalence,
                         "precision_top10": ap * 1.3, "brier": prevalence * 0.9})
        prevalence = total_pos / total_rows
        roc, ap = 0.7 + 0.02 * k, prevalence * 2.6
        rows.append({**common, "scope": "pooled", "as_of_date": None, "train_as_of_last": dates[-1],
                     "rows": total_rows, "positives": total_pos, "prevalence": prevalence,
                     "roc_auc": roc, "roc_auc_lo": roc - 0.04, "roc_auc_hi": roc + 0.04,
                     "average_precision": ap, "average_precision_lo": ap * 0.8, "average_precision_hi": ap * 1.2,
                     "ap_lift": ap / prevalence, "precision_top10": ap * 1.3, "precision_top10_lo": ap * 1.1,
                     "precision_top10_hi": ap * 1.5, "brier": prevalence * 0.9, "brier_lo": prevalence * 0.85,
                     "brier_hi": prevalence * 0.95})
    frame = pd.DataFrame(rows, columns=BACKTEST_COLUMNS)
    for column in ("as_of_date", "train_as_of_first", "train_as_of_last"):
        frame[column] = pd.to_datetime(frame[column]).dt.date
    return frame


BACKTEST_COLUMNS = [
    "backtest_id", "created_at", "kind", "model", "model_source", "scope", "as_of_date", "train_as_of_first",
    "train_as_of_last", "rows", "positives", "prevalence", "roc_auc", "roc_auc_lo", "roc_auc_hi",
    "average_precision", "average_precision_lo", "average_precision_hi", "ap_lift", "precision_top10",
    "precision_top10_lo", "precision_top10_hi", "brier", "brier_lo", "brier_hi",
]


REASON_FEATURES = ("thumbs_down_per_song_28d", "adverts_per_song_28d", "days_since_last_activity",
                   "active_days_28d", "songs_per_active_day_28d")


def _reasons(row, med: dict) -> list[dict]:
    td, ad, idle, act, spd = row
    out = []
    if td == td and med["thumbs_down_per_song_28d"] > 0 and td > med["thumbs_down_per_song_28d"] * 1.2:
        out.append((td / med["thumbs_down_per_song_28d"], "thumbs_down_per_song_28d", td,
                    f"{td / med['thumbs_down_per_song_28d']:.1f}× more thumbs down per song than typical"))
    if ad == ad and med["adverts_per_song_28d"] > 0 and ad > med["adverts_per_song_28d"] * 1.2:
        out.append((ad / med["adverts_per_song_28d"], "adverts_per_song_28d", ad,
                    f"{ad / med['adverts_per_song_28d']:.1f}× more adverts per song than typical"))
    if idle > max(med["days_since_last_activity"], 1) * 2:
        out.append((idle / max(med["days_since_last_activity"], 1), "days_since_last_activity", idle,
                    f"No listening for {idle} days (typical: {med['days_since_last_activity']:.0f})"))
    if act < med["active_days_28d"] * 0.6:
        out.append((med["active_days_28d"] / max(act, 1), "active_days_28d", act,
                    f"Active {act} of the last 28 days (typical: {med['active_days_28d']:.0f})"))
    if spd == spd and spd < med["songs_per_active_day_28d"] * 0.6:
        out.append((med["songs_per_active_day_28d"] / max(spd, 1), "songs_per_active_day_28d", spd,
                    f"{spd:.0f} songs per active day (typical: {med['songs_per_active_day_28d']:.0f})"))
    out.sort(key=lambda r: -r[0])
    return [{"feature": f, "value": float(v), "median": float(med[f]), "text": t} for _, f, v, t in out[:3]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="SPARKIFY_HOME to write (its warehouse is replaced)")
    parser.add_argument("--users", type=int, default=400, help="number of customers (default 400)")
    parser.add_argument("--days", type=int, default=63, help="days of activity from 2018-10-01 (default 63)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--delta", nargs="*", default=[], metavar="TABLE",
                        help="tables to write as Delta instead of Parquet")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    home = make_lakehouse(args.home, users=args.users, days=args.days, seed=args.seed,
                          delta_tables=tuple(args.delta))
    log.info("synthetic lakehouse with %d customers written to %s", args.users, home)


if __name__ == "__main__":
    main()
