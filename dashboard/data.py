"""The dashboard's only door to the lakehouse: tables in, pandas DataFrames out, cached in memory.

No JVM. A table folder with a `_delta_log` is read with `deltalake` at one committed version, and
reloaded when a newer version is committed; anything else is read as a (possibly hive-partitioned)
Parquet folder with DuckDB and reloaded when a cheap fingerprint of its files changes (file count,
newest mtime and size), with Spark's `_temporary`/staging folders taken as "being rebuilt" while the
process holding the lakehouse lock is alive (a killed writer's leftovers are ignored). While a
table is missing, empty, half-written or unreadable, the last good copy keeps being served and a calm
note says why; nothing here raises into a page.

`Lakehouse` adds the derived views the pages need (per-user slices of daily activity and sessions,
KPIs, model runs, the latest backtest), each memoised on the versions of the tables it uses, so a
customer lookup is a dictionary access plus a slice. Everything about one customer (profile,
tenure, activity, population medians, latest score) comes from the dbt `customers` mart as is:
the dashboard defines none of it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dashboard.whatif import Control, model_controls
from sparkify.spark import is_staging_dir, lakehouse_writer

log = logging.getLogger(__name__)

TABLES = ("customers", "daily_activity", "sessions", "user_features", "churn_scores", "model_runs",
          "model_backtests")
MAKE_TARGET = {
    "customers": "make build", "daily_activity": "make build", "sessions": "make build",
    "user_features": "make build", "churn_scores": "make train", "model_runs": "make train",
    "model_backtests": "make backtest",
}
# Per-table SQL over the view `source`: the latest score per (user, as_of) and the latest feature
# row per user are all the dashboard needs, which keeps memory flat as history grows.
QUERIES = {
    "churn_scores": "select * from source qualify row_number() over "
                    "(partition by user_id, as_of_date order by scored_at desc nulls last) = 1",
    "user_features": "select * from source qualify row_number() over "
                     "(partition by user_id order by as_of_date desc) = 1",
}
# Columns dropped at read time because no page shows them (only if present).
UNUSED_COLUMNS = {
    "sessions": ("session_key", "session_part", "add_friend_events", "add_playlist_events",
                 "help_events", "upgrade_events", "downgrade_events", "session_date"),
}
MAX_QUERY_CHARS = 200
LAST_SESSIONS = 12


# ----------------------------------------------------------------------------------------------
# Reading one table
# ----------------------------------------------------------------------------------------------

class TableUnavailable(Exception):
    """The folder is missing, empty or being written: not an error, just not readable now."""


def is_delta(path: Path) -> bool:
    return (path / "_delta_log").is_dir()


def parquet_files(path: Path) -> list[str]:
    """Data files of a Parquet table, skipping `_SUCCESS`, `_temporary/`, `.crc` and staging dirs."""
    found: list[str] = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        found.extend(os.path.join(root, n) for n in sorted(names)
                     if n.endswith(".parquet") and not n.startswith(("_", ".")))
    return found


def delta_version(path: Path) -> int | None:
    """The latest committed version of a Delta table: the highest `_delta_log/<20 digits>.json`."""
    versions = [int(e.name[:20]) for e in os.scandir(path / "_delta_log")
                if len(e.name) == 25 and e.name.endswith(".json") and e.name[:20].isdigit()]
    return max(versions) if versions else None


def fingerprint(path: Path) -> tuple | None:
    """A cheap summary that changes whenever the table changes; None if the folder is absent.

    Delta: the latest committed version (a commit is atomic, so that is the whole story). Parquet:
    file count, newest mtime and size, plus whether Spark's `_temporary`/staging folders are present."""
    try:
        if is_delta(path):
            version = delta_version(path)
            return None if version is None else ("delta", version)
        if not path.is_dir():
            return None
        busy = (any(is_staging_dir(e.name) for e in os.scandir(path))
                and lakehouse_writer(path.parents[2]) is not None)
        count, newest, size = 0, 0, 0
        for name in parquet_files(path):
            stat = os.stat(name)
            count, newest, size = count + 1, max(newest, stat.st_mtime_ns), size + stat.st_size
        return ("parquet", count, newest, size, busy)
    except OSError:  # the folder vanished while we looked: a rebuild is under way
        return None


def read_table(path: Path, query: str | None = None, drop: tuple[str, ...] = (),
               version: int | None = None) -> pd.DataFrame:
    """Read a Delta or Parquet table folder into pandas (timestamps naive UTC, dates as datetime64).

    A Delta table is read at one committed version (`version`, default the latest) through deltalake."""
    import duckdb

    con = duckdb.connect()
    try:
        if is_delta(path):
            from deltalake import DeltaTable

            table = DeltaTable(str(path), version=version)
            con.register("source_arrow", table.to_pyarrow_dataset())
            con.sql("create view source as select * from source_arrow")
        else:
            files = parquet_files(path) if path.is_dir() else []
            if not files:
                raise TableUnavailable("no data files")
            hive = any("=" in os.path.relpath(f, path) for f in files)
            con.read_parquet(files, hive_partitioning=hive, union_by_name=True).create_view("source")
        relation = con.sql(query or "select * from source")
        keep = [c for c in relation.columns if c not in drop]
        if len(keep) < len(relation.columns):
            relation = relation.select(*[f'"{c}"' for c in keep])
        table = relation.to_arrow_table() if hasattr(relation, "to_arrow_table") else relation.fetch_arrow_table()
    finally:
        con.close()
    return _to_pandas(table)


def _to_pandas(table) -> pd.DataFrame:
    frame = table.to_pandas(date_as_object=False)
    for column in frame.columns:
        dtype = frame[column].dtype
        if isinstance(dtype, pd.DatetimeTZDtype):
            frame[column] = frame[column].dt.tz_convert("UTC").dt.tz_localize(None)
    return frame


@dataclass(frozen=True)
class Snapshot:
    """What a table cache holds now: the last good frame and, if the files changed badly, why."""

    name: str
    frame: pd.DataFrame | None = None
    version: int = 0
    loaded_at: float | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.frame is not None


class TableCache:
    """One table in memory, reloaded when its fingerprint changes, never replaced by a broken read."""

    def __init__(self, name: str, path: Path, check_interval: float = 2.0,
                 query: str | None = None, drop: tuple[str, ...] = (),
                 reader: Callable[..., pd.DataFrame] = read_table) -> None:
        self.name, self.path, self.check_interval = name, Path(path), check_interval
        self.query, self.drop, self.reader = query, drop, reader
        self._snapshot = Snapshot(name)
        self._fingerprint: tuple | None = None
        self._checked_at = -math.inf
        self._lock = threading.Lock()

    def get(self) -> Snapshot:
        if time.monotonic() - self._checked_at < self.check_interval:
            return self._snapshot
        # Only the first load makes other threads wait; later reloads serve the old copy meanwhile.
        if not self._lock.acquire(blocking=self._snapshot.frame is None):
            return self._snapshot
        try:
            if time.monotonic() - self._checked_at >= self.check_interval:
                self._refresh()
            return self._snapshot
        finally:
            self._lock.release()

    def _refresh(self) -> None:
        self._checked_at = time.monotonic()
        current = fingerprint(self.path)
        if current is not None and current == self._fingerprint and self._snapshot.frame is not None:
            return
        had = self._snapshot.frame is not None
        if current is None:
            self._keep("being rebuilt (its folder is missing)" if had else "missing")
            return
        if (current[0] == "parquet" and (current[1] == 0 or current[4])):
            self._keep("being rebuilt" if had or current[4] else "empty")
            return
        try:
            if current[0] == "delta":  # pinned to the version just seen: a commit later changes nothing
                frame = self.reader(self.path, self.query, self.drop, version=current[1])
            else:
                frame = self.reader(self.path, self.query, self.drop)
                if fingerprint(self.path) != current:
                    raise TableUnavailable("its files changed while it was read")
        except TableUnavailable as exc:
            self._keep("being rebuilt" if had else f"not readable yet ({exc})")
            return
        except Exception as exc:  # a half-written or corrupt file: keep serving what we had
            log.warning("table %s at %s could not be read: %s", self.name, self.path, exc)
            self._keep("being rebuilt or unreadable" if had else "unreadable")
            return
        self._fingerprint = current
        self._snapshot = Snapshot(self.name, frame, self._snapshot.version + 1, time.time(), None)
        log.info("loaded table %s: %d rows (version %d)", self.name, len(frame), self._snapshot.version)

    def _keep(self, problem: str) -> None:
        self._fingerprint = None  # reload as soon as the files look whole again
        old = self._snapshot
        self._snapshot = Snapshot(self.name, old.frame, old.version, old.loaded_at, problem)


# ----------------------------------------------------------------------------------------------
# Results handed to pages
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Lookup:
    """The outcome of a search: found (user_id), several candidates, unknown, or no data yet."""

    status: str  # "found" | "ambiguous" | "unknown" | "empty" | "unavailable"
    query: str = ""
    user_id: str | None = None
    candidates: pd.DataFrame | None = None


@dataclass(frozen=True)
class CustomerView:
    profile: dict[str, Any]
    activity: pd.DataFrame  # metric, value, median, better ("higher"/"lower")
    daily: pd.DataFrame
    level_changes: pd.DataFrame
    sessions: pd.DataFrame
    score: dict[str, Any] | None
    score_history: pd.DataFrame


@dataclass(frozen=True)
class ModelRuns:
    runs: pd.DataFrame  # one row per run, newest first
    latest: dict[str, Any]
    metrics: pd.DataFrame  # the latest run's per-model metrics
    by_protocol: dict[str, dict[str, Any]] = field(default_factory=dict)  # newest run per protocol


@dataclass(frozen=True)
class Backtest:
    """One rolling-origin (or fixed-model) backtest: its pooled row and its per-snapshot rows."""

    pooled: dict[str, Any]
    snapshots: pd.DataFrame  # scope 'snapshot', oldest as_of_date first


# ----------------------------------------------------------------------------------------------
# The lakehouse
# ----------------------------------------------------------------------------------------------

def default_home() -> Path:
    """SPARKIFY_HOME as the rest of the project resolves it (default ./lakehouse)."""
    return Path(os.environ.get("SPARKIFY_HOME") or "lakehouse").expanduser().resolve()


def table_location(home: Path, name: str) -> Path:
    """`sparkify.settings` decides where a table lives; fall back to its layout if it cannot load."""
    try:
        from sparkify import settings

        return settings.load({"SPARKIFY_HOME": str(home), "SPARKIFY_TABLE_FORMAT": "parquet"}).table_path(name)
    except Exception:  # pragma: no cover - only without the sparkify package
        return home / "warehouse" / "sparkify.db" / name


class Lakehouse:
    """Cached tables plus the derived views the pages ask for."""

    def __init__(self, home: str | Path | None = None, check_interval: float = 2.0) -> None:
        self.home = Path(home).expanduser().resolve() if home else default_home()
        self.tables = {
            name: TableCache(name, table_location(self.home, name), check_interval,
                             query=QUERIES.get(name), drop=UNUSED_COLUMNS.get(name, ()))
            for name in TABLES
        }
        self._memo_store: dict[str, tuple[Hashable, Any]] = {}
        self._memo_lock = threading.RLock()

    # -- tables --------------------------------------------------------------------------------
    def snapshot(self, name: str) -> Snapshot:
        return self.tables[name].get()

    def frame(self, name: str) -> pd.DataFrame | None:
        return self.snapshot(name).frame

    def notes(self, *names: str) -> list[str]:
        """Plain sentences about tables that are missing or stale, for a calm banner on a page."""
        out = []
        for name in names:
            snap = self.snapshot(name)
            if snap.frame is None:
                out.append(f"The {name} table is not available yet ({snap.problem or 'missing'}): "
                           f"run `{MAKE_TARGET[name]}`.")
            elif snap.problem:
                loaded = time.strftime("%H:%M:%S", time.localtime(snap.loaded_at or 0))
                out.append(f"The {name} table is {snap.problem}; showing the copy loaded at {loaded}.")
        return out

    def warm(self) -> None:
        """Load every table and build the main views, so the first visitor does not wait."""
        started = time.perf_counter()
        for name in TABLES:
            self.snapshot(name)
        self.index()
        self.daily_slices()
        self.session_slices()
        self.overview()
        self.at_risk()
        self.model_runs()
        log.info("lakehouse warm in %.1fs", time.perf_counter() - started)

    def _memo(self, key: str, deps: tuple[str, ...], build: Callable[..., Any]) -> Any:
        snaps = [self.snapshot(d) for d in deps]
        version = tuple(s.version for s in snaps)
        hit = self._memo_store.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        with self._memo_lock:
            hit = self._memo_store.get(key)
            if hit is not None and hit[0] == version:
                return hit[1]
            value = build(*[s.frame for s in snaps])
            self._memo_store[key] = (version, value)
            return value

    # -- customers -----------------------------------------------------------------------------
    def customers(self) -> pd.DataFrame | None:
        """The dbt `customers` mart: one row per user with profile, activity, medians and latest score."""
        return self._memo("customers", ("customers",), prepare_customers)

    def index(self) -> CustomerIndex | None:
        return self._memo("index", ("customers",),
                          lambda f: CustomerIndex(self.customers()) if f is not None else None)

    def daily_slices(self) -> Slices | None:
        return self._memo("daily_slices", ("daily_activity",),
                          lambda f: Slices(f, "activity_date") if f is not None else None)

    def session_slices(self) -> Slices | None:
        return self._memo("session_slices", ("sessions",),
                          lambda f: Slices(f, "started_at") if f is not None else None)

    def score_slices(self) -> Slices | None:
        return self._memo("score_slices", ("churn_scores",),
                          lambda f: Slices(f, "as_of_date") if f is not None else None)

    def lookup(self, query: object) -> Lookup:
        """Resolve what an agent typed: an exact user id, else a full, first or last name."""
        text = "" if query is None else str(query).strip()
        if not text:
            return Lookup("empty")
        index = self.index()
        if index is None:
            return Lookup("unavailable", text)
        return index.find(text)

    def customer(self, user_id: str) -> CustomerView | None:
        index = self.index()
        if index is None or user_id not in index.positions:
            return None
        profile = index.profile(user_id)
        daily_slices, session_slices = self.daily_slices(), self.session_slices()
        score_slices = self.score_slices()
        daily = daily_slices.get(user_id) if daily_slices else pd.DataFrame()
        sessions = session_slices.get(user_id) if session_slices else pd.DataFrame()
        if len(sessions):
            sessions = sessions.iloc[::-1].head(LAST_SESSIONS)
        history = score_slices.get(user_id) if score_slices else pd.DataFrame()
        score = None
        if profile.get("churn_probability") is not None:
            score = {k: profile.get(k) for k in (
                "churn_probability", "risk_band", "reason_1", "reason_2", "reason_3", "scored_as_of_date",
                "model_run_id", "scored_at", "is_current_score")}
            score["reasons"] = [r for r in (score["reason_1"], score["reason_2"], score["reason_3"]) if r]
            score["in_sample"] = self.in_training_set(profile.get("model_run_id"), profile.get("scored_as_of_date"))
        return CustomerView(
            profile=profile,
            activity=activity_against_median(profile),
            daily=daily,
            level_changes=level_changes(profile.get("level_history")),
            sessions=sessions,
            score=score,
            score_history=history,
        )

    # -- overview and at-risk ------------------------------------------------------------------
    def overview(self) -> dict[str, Any] | None:
        return self._memo("overview", ("customers", "daily_activity"),
                          lambda *_: build_overview(self.customers(), self.frame("daily_activity"),
                                                    self.current_scores()))

    def current_scores(self) -> pd.DataFrame | None:
        """Scores at the latest as_of date, joined to the customer profile."""
        return self._memo("current", ("customers",), lambda _: build_current_scores(self.customers()))

    def at_risk(self) -> pd.DataFrame | None:
        """Active (scored at the latest as_of, not churned) customers, most likely to churn first."""
        def build(*_):
            current = self.current_scores()
            if current is None:
                return None
            frame = current[~current["is_churned"].eq(True)]
            return frame.sort_values("churn_probability", ascending=False, kind="stable").reset_index(drop=True)
        return self._memo("at_risk", ("customers",), build)

    # -- model ---------------------------------------------------------------------------------
    def model_runs(self) -> ModelRuns | None:
        return self._memo("model_runs", ("model_runs",), build_model_runs)

    def backtest(self) -> Backtest | None:
        """The newest backtest in model_backtests (max created_at); None while there is none."""
        return self._memo("backtest", ("model_backtests",), latest_backtest)

    def in_training_set(self, run_id: object, as_of: object) -> bool:
        """True when a score's as_of date was one the model trained on: an in-sample number."""
        runs = self.model_runs()
        if runs is None or run_id is None or as_of is None:
            return False
        match = runs.runs[runs.runs["run_id"] == run_id]
        if match.empty or "train_as_of" not in match.columns:
            return False
        dates = {pd.Timestamp(d).normalize() for d in _as_list(match.iloc[0]["train_as_of"])}
        return pd.Timestamp(as_of).normalize() in dates

    def report_curves(self, run: dict[str, Any]) -> dict[str, dict[str, pd.DataFrame]]:
        """curves.json of a run's report folder, parsed; {} when absent or unreadable."""
        folder = self.report_folder(run)
        if folder is None or not (folder / "curves.json").is_file():
            return {}
        stat = (folder / "curves.json").stat()
        key = f"curves:{folder}"
        hit = self._memo_store.get(key)
        if hit is not None and hit[0] == (stat.st_mtime_ns, stat.st_size):
            return hit[1]
        try:
            parsed = parse_curves(json.loads((folder / "curves.json").read_text()))
        except Exception as exc:
            log.warning("could not read %s: %s", folder / "curves.json", exc)
            parsed = {}
        self._memo_store[key] = ((stat.st_mtime_ns, stat.st_size), parsed)
        return parsed

    def report_folder(self, run: dict[str, Any]) -> Path | None:
        raw = run.get("report_path")
        if not raw:
            return None
        folder = Path(str(raw))
        if not folder.is_absolute():
            folder = self.home / folder
        if not folder.is_dir():  # a lakehouse moved since training: look under this home
            local = self.home / "reports" / folder.name
            folder = local if local.is_dir() else folder
        return folder if folder.is_dir() else None

    # -- what-if -------------------------------------------------------------------------------
    def model_meta(self) -> dict[str, Any] | None:
        """model.json of the saved model `models/latest` names (features, importance, ranges,
        medians); None before the first training run or while it is unreadable."""
        try:
            run = (self.home / "models" / "latest").read_text().strip()
            path = self.home / "models" / run / "model.json"
            stat = path.stat()
        except OSError:
            return None
        stamp = (str(path), stat.st_mtime_ns, stat.st_size)
        hit = self._memo_store.get("model_meta")
        if hit is not None and hit[0] == stamp:
            return hit[1]
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("could not read %s: %s", path, exc)
            return None
        meta = meta if isinstance(meta, dict) else None
        self._memo_store["model_meta"] = (stamp, meta)
        return meta

    def whatif_controls(self) -> list[Control]:
        """The what-if sliders: the latest model's most important features with their ranges."""
        return model_controls(self.model_meta(), self.latest_features())

    def latest_features(self) -> pd.DataFrame | None:
        """The newest user_features row per user (the starting point of a what-if)."""
        return self._memo("features", ("user_features",),
                          lambda f: f.set_index("user_id", drop=False) if f is not None else None)

    def feature_row(self, user_id: str) -> dict[str, Any] | None:
        features = self.latest_features()
        if features is None or user_id not in features.index:
            return None
        return {k: _plain(v) for k, v in features.loc[user_id].items()}

    def typical_features(self) -> dict[str, Any] | None:
        """Medians of every numeric feature at the latest as_of date: a typical active customer."""
        def build(features):
            if features is None or features.empty:
                return None
            latest = features[features["as_of_date"] == features["as_of_date"].max()]
            numeric = latest.select_dtypes(include=[np.number, "bool"]).astype(float)
            return {k: float(v) for k, v in numeric.median().items() if not math.isnan(v)}
        return self._memo("typical", ("user_features",), build)


# ----------------------------------------------------------------------------------------------
# Derived views: pure functions of DataFrames, so tests can check them with hand-made frames
# ----------------------------------------------------------------------------------------------

class Slices:
    """Rows of one user, by position: a sorted frame plus user -> (start, stop)."""

    def __init__(self, frame: pd.DataFrame, order: str) -> None:
        keys = ["user_id"] + ([order] if order in frame.columns else [])
        self.frame = frame.sort_values(keys, kind="stable").reset_index(drop=True)
        ids = self.frame["user_id"].astype(str).to_numpy()
        if len(ids) == 0:
            self.bounds: dict[str, tuple[int, int]] = {}
            return
        change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
        starts = np.r_[0, change]
        stops = np.r_[change, len(ids)]
        self.bounds = {ids[a]: (int(a), int(b)) for a, b in zip(starts, stops)}

    def get(self, user_id: str) -> pd.DataFrame:
        bounds = self.bounds.get(user_id)
        return self.frame.iloc[0:0] if bounds is None else self.frame.iloc[bounds[0]:bounds[1]]


class CustomerIndex:
    """user_id -> row position, and lower-cased names -> user ids, for instant lookups."""

    def __init__(self, customers: pd.DataFrame) -> None:
        self.customers = customers
        ids = customers["user_id"].astype(str).tolist()
        self.positions = {uid: i for i, uid in enumerate(ids)}
        self._columns = {column: customers[column].to_numpy() for column in customers.columns}
        self.names: dict[str, list[str]] = {}
        for column in ("name", "first_name", "last_name"):
            if column not in customers.columns:
                continue
            for uid, name in zip(ids, customers[column].tolist()):
                if isinstance(name, str) and name.strip():
                    key = " ".join(name.lower().split())
                    bucket = self.names.setdefault(key, [])
                    if uid not in bucket:
                        bucket.append(uid)

    def profile(self, user_id: str) -> dict[str, Any]:
        """One customer's row as a plain dict (numpy scalars and NaN turned into Python values)."""
        position = self.positions[user_id]
        return {column: _plain(values[position]) for column, values in self._columns.items()}

    def find(self, text: str) -> Lookup:
        if len(text) > MAX_QUERY_CHARS:
            return Lookup("unknown", text)
        if text in self.positions:
            return Lookup("found", text, text)
        hits = self.names.get(" ".join(text.lower().split()), [])
        if len(hits) == 1:
            return Lookup("found", text, hits[0])
        if hits:
            rows = self.customers.iloc[[self.positions[h] for h in hits[:50]]]
            return Lookup("ambiguous", text, candidates=rows)
        return Lookup("unknown", text)


def prepare_customers(customers: pd.DataFrame | None) -> pd.DataFrame | None:
    """The mart as the pages use it: user ids as strings, rows in user order; nothing recomputed."""
    if customers is None:
        return None
    out = customers.copy()
    out["user_id"] = out["user_id"].astype(str)
    return out.sort_values("user_id", kind="stable").reset_index(drop=True)


def build_current_scores(customers: pd.DataFrame | None) -> pd.DataFrame | None:
    if customers is None or "is_current_score" not in customers.columns:
        return None
    return customers[customers["is_current_score"].eq(True)].reset_index(drop=True)


# metric, label, which direction is healthy
ACTIVITY_METRICS = (
    ("active_days", "Days active", "higher"),
    ("songs_per_active_day", "Songs per active day", "higher"),
    ("sessions", "Sessions", "higher"),
    ("listen_hours", "Hours listened", "higher"),
    ("songs_7d", "Songs in the last 7 days", "higher"),
    ("thumbs_down_per_100_songs", "Thumbs down per 100 songs", "lower"),
    ("adverts_per_100_songs", "Adverts per 100 songs", "lower"),
)


def activity_against_median(row: dict[str, Any]) -> pd.DataFrame:
    """The customer's activity figures next to the mart's medians of the population scored at the
    same as_of (one row per metric); empty for a customer never scored (no population to compare)."""
    rows = []
    for metric, label, better in ACTIVITY_METRICS:
        median = _number(row.get(f"median_{metric}"))
        if median is None:
            continue
        rows.append({"metric": metric, "label": label, "value": _number(row.get(metric)), "median": median,
                     "ratio": _number(row.get(f"{metric}_vs_median")), "better": better})
    return pd.DataFrame(rows, columns=["metric", "label", "value", "median", "ratio", "better"])


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def level_changes(history: object) -> pd.DataFrame:
    """The users.level_history array as a frame (changed_at, from_level, to_level, change_type)."""
    items = [dict(h) for h in _as_list(history) if isinstance(h, dict)]
    frame = pd.DataFrame(items, columns=["changed_at", "from_level", "to_level", "change_type"])
    if len(frame):
        frame["changed_at"] = pd.to_datetime(frame["changed_at"])
    return frame


def build_overview(customers: pd.DataFrame | None, daily: pd.DataFrame | None,
                   current: pd.DataFrame | None) -> dict[str, Any] | None:
    """KPIs and the day-by-day totals behind the overview page."""
    if customers is None:
        return None
    kpis: dict[str, Any] = {"customers": int(len(customers))}
    if "is_churned" in customers.columns and len(customers):
        kpis["churned_share"] = float(customers["is_churned"].eq(True).mean())
    kpis["median_days_active"] = _median(customers.get("active_days"))
    kpis["median_songs_per_day"] = _median(customers.get("songs_per_active_day"))
    totals = pd.DataFrame(columns=["activity_date", "active_users", "events", "songs"])
    if daily is not None and len(daily):
        dates = pd.to_datetime(daily["activity_date"])
        first, last = dates.min(), dates.max()
        kpis["date_range"] = (first, last)
        recent = daily.loc[dates > last - pd.Timedelta(days=7), "user_id"]
        kpis["active_7d"] = int(recent.nunique())
        totals = (daily.assign(activity_date=dates)
                  .groupby("activity_date")
                  .agg(active_users=("user_id", "nunique"), events=("events", "sum"),
                       songs=("song_events", "sum"))
                  .reset_index())
    if current is not None:
        active = current[~current["is_churned"].eq(True)]
        kpis["scored"] = int(len(active))
        kpis["high_risk"] = int((active["risk_band"] == "high").sum())
        kpis["scores_as_of"] = active["scored_as_of_date"].max() if len(active) else None
    return {"kpis": kpis, "daily_totals": totals}


def build_model_runs(runs: pd.DataFrame | None) -> ModelRuns | None:
    if runs is None or runs.empty:
        return None
    ordered = runs.sort_values("started_at", ascending=False, kind="stable").reset_index(drop=True)
    selected = []
    for _, run in ordered.iterrows():
        metrics = metrics_frame(run.get("metrics"))
        chosen = metrics[metrics["is_selected"]] if "is_selected" in metrics.columns else metrics.iloc[0:0]
        if chosen.empty and len(metrics):
            chosen = metrics[metrics["model"] == run.get("selected_model")]
        selected.append(chosen.iloc[0].to_dict() if len(chosen) else {})
    for column in ("auc_pr", "roc_auc", "precision_at_top10", "brier", "f1"):
        ordered[f"selected_{column}"] = [s.get(column) for s in selected]
    latest = ordered.iloc[0].to_dict()
    by_protocol = {}
    for protocol, group in ordered.groupby(ordered.get("protocol", pd.Series(["time"] * len(ordered)))):
        run = group.iloc[0].to_dict()
        run["selected_metrics"] = selected[group.index[0]]
        by_protocol[str(protocol)] = run
    latest["selected_metrics"] = selected[0]
    return ModelRuns(ordered, latest, metrics_frame(latest.get("metrics")), by_protocol)


def latest_backtest(backtests: pd.DataFrame | None) -> Backtest | None:
    """The rows of the backtest created last, split into the pooled row and the snapshot rows."""
    if backtests is None or backtests.empty or "created_at" not in backtests.columns:
        return None
    ordered = backtests.sort_values(["created_at", "backtest_id"], kind="stable")
    rows = backtests[backtests["backtest_id"] == ordered["backtest_id"].iloc[-1]]
    pooled = rows[rows["scope"] == "pooled"]
    snapshots = (rows[rows["scope"] == "snapshot"].sort_values("as_of_date", kind="stable")
                 .reset_index(drop=True))
    first = (pooled if len(pooled) else rows).iloc[0]
    summary = {k: _plain(v) for k, v in first.items()} if len(pooled) else {
        k: _plain(first[k]) for k in ("backtest_id", "created_at", "kind", "model", "model_source")
        if k in rows.columns}
    return Backtest(summary, snapshots)


def metrics_frame(metrics: object) -> pd.DataFrame:
    rows = [dict(m) for m in _as_list(metrics) if isinstance(m, dict)]
    frame = pd.DataFrame(rows)
    if "is_selected" in frame.columns:
        frame["is_selected"] = frame["is_selected"].eq(True)
    return frame


CURVE_KEYS = {
    "pr": ("pr", "pr_curve", "precision_recall"),
    "roc": ("roc", "roc_curve"),
    "calibration": ("calibration", "calibration_curve", "reliability"),
    "importance": ("feature_importance", "feature_importances", "importance", "importances"),
}
COLUMN_SYNONYMS = {
    "recall": ("recall", "r"), "precision": ("precision", "p"),
    "fpr": ("fpr", "false_positive_rate"), "tpr": ("tpr", "true_positive_rate", "recall"),
    "predicted": ("mean_predicted", "predicted", "prob_pred", "mean_predicted_probability", "x"),
    "observed": ("fraction_positive", "observed", "prob_true", "fraction_of_positives", "y"),
    "feature": ("feature", "features", "name", "names"),
    "importance": ("importance", "importances", "value", "values"),
}
CURVE_COLUMNS = {"pr": ("recall", "precision"), "roc": ("fpr", "tpr"),
                 "calibration": ("predicted", "observed"), "importance": ("feature", "importance")}


def parse_curves(raw: object) -> dict[str, dict[str, pd.DataFrame]]:
    """Normalise curves.json to {model: {pr|roc|calibration|importance: DataFrame}}, forgivingly.

    Accepted: {"models": {name: {...}}} or {name: {...}}; each curve a dict of equal-length lists,
    a list of point dicts, or a list of [x, y] pairs; feature importance also as {feature: value}.
    """
    models = raw.get("models", raw) if isinstance(raw, dict) else {}
    out: dict[str, dict[str, pd.DataFrame]] = {}
    for model, body in (models.items() if isinstance(models, dict) else []):
        if not isinstance(body, dict):
            continue
        parsed = {}
        for kind, keys in CURVE_KEYS.items():
            value = next((body[k] for k in keys if k in body), None)
            frame = _curve_frame(value, CURVE_COLUMNS[kind])
            if frame is not None and len(frame):
                parsed[kind] = frame
        if parsed:
            out[str(model)] = parsed
    return out


def _curve_frame(value: object, columns: tuple[str, str]) -> pd.DataFrame | None:
    x, y = columns
    if isinstance(value, dict):
        lower = {str(k).lower(): v for k, v in value.items()}
        xs = next((lower[k] for k in COLUMN_SYNONYMS[x] if k in lower), None)
        ys = next((lower[k] for k in COLUMN_SYNONYMS[y] if k in lower and k not in COLUMN_SYNONYMS[x]), None)
        if isinstance(xs, list) and isinstance(ys, list) and len(xs) == len(ys):
            frame = pd.DataFrame({x: xs, y: ys})
        elif x == "feature" and all(isinstance(v, (int, float)) for v in value.values()):
            frame = pd.DataFrame({x: list(value.keys()), y: list(value.values())})
        else:
            return None
    elif isinstance(value, list) and value:
        if all(isinstance(p, dict) for p in value):
            return _curve_frame({k: [p.get(k) for p in value] for k in value[0]}, columns)
        if all(isinstance(p, (list, tuple)) and len(p) >= 2 for p in value):
            frame = pd.DataFrame({x: [p[0] for p in value], y: [p[1] for p in value]})
        else:
            return None
    else:
        return None
    if y != "importance" or x != "feature":
        frame[x] = pd.to_numeric(frame[x], errors="coerce")
    frame[y] = pd.to_numeric(frame[y], errors="coerce")
    return frame.dropna()


def risk_cutoffs(run: dict[str, Any] | None) -> dict[str, float]:
    """The band cut-offs a run documented in its risk_bands JSON, as {band: lower bound}."""
    if not run:
        return {}
    raw = run.get("risk_bands")
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    out = {}
    if isinstance(parsed, dict):
        for band, value in parsed.items():
            if isinstance(value, (int, float)):
                out[str(band).lower()] = float(value)
            elif isinstance(value, dict):
                bound = value.get("min", value.get("lower", value.get("from")))
                if isinstance(bound, (int, float)):
                    out[str(band).lower()] = float(bound)
            elif isinstance(value, list) and value and isinstance(value[0], (int, float)):
                out[str(band).lower()] = float(value[0])
    return {b: v for b, v in out.items() if 0 < v < 1}


def _median(values: object) -> float | None:
    if values is None:
        return None
    value = pd.to_numeric(values, errors="coerce").median()
    return None if pd.isna(value) else float(value)


def _as_list(value: object) -> list:
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    return []


def _plain(value: object) -> object:
    """numpy scalars to Python, NaN/NaT to None, so views can format without surprises."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or (not isinstance(value, (list, dict, str)) and pd.isna(value)):
        return None
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value)
    if isinstance(value, np.generic):
        return value.item()
    return value
