"""Benchmarks: `python -m sparkify.bench` (`make bench`) and `python -m sparkify.bench --scale 1,4,16,64`
(`make bench-scale`). Measurements, not tests: nothing here asserts a time.

`make bench` runs, each as a user would in a fresh process on a fresh lakehouse of `--events` (default
es_small) with its last day held back: a bare Spark cold start; a cold `make pipeline`; a cold `make
build`; a no-change `make build`; one new day, incremental; then the dashboard's benchmark
(dashboard/bench.py) on the pipeline's lakehouse. It prints one table: each figure, its target and the
command behind it.

`make bench-scale` generates, for each factor, 250 x factor users over two months with `python -m
sparkify.generate` (64 is about 16,000 users and 20 million events, the size of the full Udacity log) and
runs a cold `make pipeline` on it; then, in a lakehouse of its own, a cold `make build` on the file's
history (all but its last day) and `make build` once the last day's file is added, as `make bench` does:
the cost of one new day against the size of the history. Then the dashboard benchmark on the largest.
It prints one table and a last line, the new-day curve. Per run: wall time per stage and the peak memory
of the whole process tree, the Spark JVM included (RSS summed over the process and its descendants,
sampled every 0.2 s), over the run and while each stage ran.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sparkify import settings as cfg

log = logging.getLogger("sparkify.bench")
DEFAULT_EVENTS = cfg.PROJECT_ROOT.parent / "shared" / "data" / "eventsim" / "es_small.json.gz"
PIPELINE = (sys.executable, "-m", "sparkify.pipeline")  # make pipeline
BUILD = (sys.executable, "-m", "sparkify.dbt", "build")  # make build
# The acceptance script's reference (../shared/acceptance/pipeline-speed): a bare local session's first job.
COLD_START = ("import time; t = time.time(); from pyspark.sql import SparkSession as S; "
              "s = S.builder.master('local[2]').config('spark.ui.enabled', 'false').getOrCreate(); "
              "s.range(10).count(); s.stop(); print(time.time() - t)")
STEP = re.compile(r"sparkify: pipeline step (.+) took ([\d.]+) s")
BASE_USERS = 250  # es_small's size: the scale factors multiply it
SCALE_START = dt.date(2018, 10, 1)
DAY_MS = 86_400_000
# The targets for one new day (issue 25), on es_small and at 16x.
NEW_DAY_TARGET = "<= 35 s"
SCALE_TARGET_FACTOR = 16
SCALE_NEW_DAY_TARGET, SCALE_SHARE_TARGET = "<= 60 s", "<= 25 %"


@dataclass
class Run:
    seconds: float
    peak_mb: float
    steps: dict[str, float] = field(default_factory=dict)
    step_peak_mb: list[float | None] = field(default_factory=list)  # the peak while each step ran (None: unsampled)

    @property
    def stages(self) -> str:
        peaks = [f" (peak {mb:.0f} MB)" if mb else "" for mb in self.step_peak_mb] + [""] * len(self.steps)
        return ", ".join(f"{name} {seconds:.0f} s{peak}" for (name, seconds), peak in zip(self.steps.items(), peaks))


def tree_rss_kb(root: int) -> int:
    """Resident memory of a process and all its descendants (kB), from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/status") as handle:
                kb = next((int(line.split()[1]) for line in handle if line.startswith("VmRSS:")), 0)
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = kb
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def measured(command: Sequence[str], env: dict[str, str]) -> Run:
    """Run a command to its end; its wall time and the peak RSS of its process tree (MB)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(command, env={**os.environ, **env}, cwd=cfg.PROJECT_ROOT,
                                   stdout=out, stderr=subprocess.STDOUT, text=True)
        peak = 0
        # Each sample counts towards the step that is running: the steps finished so far, as logged.
        step_peaks: dict[int, int] = {}
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            read, partial, finished = 0, b"", 0
            while not done.wait(0.2):
                rss = tree_rss_kb(process.pid)
                new = os.pread(out.fileno(), 1 << 20, read)
                read += len(new)
                # only the lines completed since the last sample are searched; a partial one waits for its end
                *lines, partial = (partial + new).split(b"\n")
                finished += sum(bool(STEP.search(line.decode("utf-8", "replace"))) for line in lines)
                step_peaks[finished] = max(step_peaks.get(finished, 0), rss)
                peak = max(peak, rss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = process.wait()
        done.set()
        sampler.join()
        seconds = time.perf_counter() - started
        out.seek(0)
        text = out.read()
    if code != 0:
        raise SystemExit(f"{' '.join(command)} failed (exit {code}):\n{text[-5000:]}")
    steps = {m[1]: float(m[2]) for m in STEP.finditer(text)}
    # What runs after the last step (the closing summary) counts towards it.
    if steps and len(steps) in step_peaks:
        step_peaks[len(steps) - 1] = max(step_peaks.get(len(steps) - 1, 0), step_peaks.pop(len(steps)))
    return Run(seconds, peak / 1024, steps, [step_peaks[i] / 1024 if i in step_peaks else None for i in range(len(steps))])


def python_module(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def cold_start() -> float:
    """Seconds of a bare local SparkSession's start and first job, in a new process."""
    result = subprocess.run([sys.executable, "-c", COLD_START], capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def split_last_day(source: Path, raw: Path) -> Path:
    """Write all but the last UTC day of `source` into raw/, return the last day as its own file.

    Two streamed passes, the lines in their order: a 64x generated log is about 9 GB of text, more than
    the memory of a small machine. The first pass keeps only each line's ts (8 bytes a line).
    """
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", encoding="utf-8") as handle:
        stamps = array("q", (json.loads(line)["ts"] for line in handle))
    last_day = max(stamps) // DAY_MS * DAY_MS
    late_file = raw.parent / "events-last-day.json"
    with (opener(source, "rt", encoding="utf-8") as handle,
          gzip.open(raw / "events-early.json.gz", "wt", encoding="utf-8", compresslevel=1) as early,
          late_file.open("w", encoding="utf-8") as late):
        for line, ts in zip(handle, stamps, strict=True):
            (early if ts < last_day else late).write(line.rstrip("\n") + "\n")
    return late_file


def timed_build(home: Path, raw: Path, command: Sequence[str] = BUILD) -> Run:
    """`make build` of the raw files in raw/ into the lakehouse at home, in a fresh process."""
    return measured(command, {"SPARKIFY_HOME": str(home), "SPARKIFY_EVENTS": str(raw)})


def add_day(late_file: Path, raw: Path) -> None:
    """The held-back day arrives as a new file in the raw folder, as a daily delivery does."""
    shutil.copy(late_file, raw / late_file.name)


@dataclass
class NewDay:
    """A cold `make build` on a log's history (all but its last day), then `make build` with the day added."""

    day_events: int
    cold: Run
    incremental: Run

    @property
    def share(self) -> float:
        """One new day's build time as a fraction of the history's cold build."""
        return self.incremental.seconds / self.cold.seconds


def one_new_day(events: Path, work: Path, build: Sequence[str] = BUILD) -> NewDay:
    """Split `events` into history and last day under work/, build the history cold, add the day, build."""
    raw = work / "raw"
    raw.mkdir(parents=True)
    late_file = split_last_day(events, raw)
    home = work / "home"
    cold = timed_build(home, raw, build)
    log.info("cold make build of the history %.1f s", cold.seconds)
    add_day(late_file, raw)
    incremental = timed_build(home, raw, build)
    log.info("one new day %.1f s", incremental.seconds)
    with late_file.open(encoding="utf-8") as handle:
        day_events = sum(1 for _ in handle)
    return NewDay(day_events, cold, incremental)


def dashboard_figures(home: Path, load_seconds: float) -> dict:
    """dashboard/bench.py on a built and scored lakehouse, its figures as a dict."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        measured(python_module("dashboard.bench", "--home", str(home), "--load-seconds", str(load_seconds),
                               "--json", out.name), {})
        return json.loads(Path(out.name).read_text())


def table(rows: list[tuple[str, ...]]) -> str:
    """Rows of equally many cells as text: every column but the last padded, a rule under the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 7)
    return "\n".join(lines)


def widened(row: tuple[str, ...], cells: int) -> tuple[str, ...]:
    """A row of `make bench`'s four cells in a wider table: empty cells before its last one."""
    return row[:-1] + ("",) * (cells - len(row)) + row[-1:]


def bench(events: Path, work: Path, load_seconds: float) -> list[tuple[str, str, str, str]]:
    raw = work / "raw"
    raw.mkdir()
    late_file = split_last_day(events, raw)
    home, build_home = work / "home", work / "build-home"
    start = min(cold_start(), cold_start())
    log.info("Spark cold start %.1f s", start)
    pipeline = measured(PIPELINE, {"SPARKIFY_HOME": str(home), "SPARKIFY_EVENTS": str(raw)})
    log.info("cold make pipeline %.1f s %s", pipeline.seconds, pipeline.steps)
    build = timed_build(build_home, raw)
    log.info("cold make build %.1f s", build.seconds)
    unchanged = timed_build(home, raw)
    log.info("no-change make build %.1f s", unchanged.seconds)
    add_day(late_file, raw)
    new_day = timed_build(home, raw)
    log.info("one new day %.1f s", new_day.seconds)
    dash = dashboard_figures(home, load_seconds)
    rows = [("what", "measured", "target", "command"),
            ("Spark cold start (bare local[2] session, first job)", f"{start:.1f} s", "",
             "python -c '<../shared/acceptance/pipeline-speed cold start>'"),
            ("cold make pipeline", f"{pipeline.seconds:.0f} s = {pipeline.seconds / start:.1f}x cold start",
             "<= 120 s, <= 12x", "make pipeline (python -m sparkify.pipeline), new SPARKIFY_HOME"),
            ("  its stages", pipeline.stages, "", "the pipeline's own step timings"),
            ("  peak memory, JVM included", f"{pipeline.peak_mb:.0f} MB", "", "RSS of the process tree"),
            ("cold make build", f"{build.seconds:.0f} s", "<= 60 s", "make build (python -m sparkify.dbt build)"),
            ("no-change make build", f"{unchanged.seconds:.0f} s", "<= 20 s", "make build again"),
            ("one new day, incremental", f"{new_day.seconds:.0f} s", NEW_DAY_TARGET,
             "make build after adding the last day's file")]
    rows += dashboard_rows(dash)
    rows.append(("input", f"{events.name}, all but its last day", "", f"{os.cpu_count()} cores"))
    return rows


def dashboard_rows(dash: dict) -> list[tuple[str, str, str, str]]:
    command = "python -m dashboard.bench --home <the pipeline's SPARKIFY_HOME>"
    lookup, load = dash["lookup_ms"], dash.get("load") or {}
    rows = [
        ("dashboard: customer lookup callback", f"p50 {lookup['p50']:.1f} ms, p95 {lookup['p95']:.1f} ms "
         f"({dash['customers']:,} customers)", "p95 <= 50 ms", command),
        ("dashboard: load test", f"{load.get('clients')} clients {load.get('seconds', 0):.0f} s: "
         f"{load.get('requests')} lookups, {load.get('errors')} errors, p95 {load.get('p95', float('nan')):.0f} ms",
         "0 errors", command),
        ("dashboard: app memory", f"{dash['rss_mb']:.0f} MB after, peak {dash['peak_rss_mb']:.0f} MB",
         "<= 1024 MB", command),
    ]
    browser = dash.get("at_risk_browser_s")
    if browser:
        rows.append(("dashboard: at-risk first row, fresh browser", f"{browser['fresh_browser_s']:.2f} s",
                     "<= 1 s", command))
    return rows


@dataclass
class ScalePoint:
    """One factor of `make bench-scale`: the generated log and what each measurement on it took."""

    factor: int
    users: int
    events: int
    generated_seconds: float
    pipeline: Run
    new_day: NewDay

    @property
    def history_events(self) -> int:
        return self.events - self.new_day.day_events


def scale_point(factor: int, work: Path, days: int, pipeline: Sequence[str] = PIPELINE,
                build: Sequence[str] = BUILD) -> ScalePoint:
    """Generate 250 x factor users over `days` under work/x<factor>/ and measure the pipeline and one new day."""
    users = BASE_USERS * factor
    folder = work / f"x{factor}"
    raw = folder / "raw"
    events = raw / "events.json.gz"
    began = time.perf_counter()
    subprocess.run(python_module("sparkify.generate", "--users", str(users), "--start", str(SCALE_START),
                                 "--end", str(SCALE_START + dt.timedelta(days=days)), "--seed", "42",
                                 "--out", str(events), "--quiet"),
                   check=True, cwd=cfg.PROJECT_ROOT)
    generated = time.perf_counter() - began
    with gzip.open(events, "rt", encoding="utf-8") as handle:
        lines = sum(1 for _ in handle)
    # (1) A user's first run: a cold make pipeline on the whole file, in lakehouse A (folder/home).
    run = measured(pipeline, {"SPARKIFY_HOME": str(folder / "home"), "SPARKIFY_EVENTS": str(raw)})
    log.info("%sx: cold make pipeline %.1f s %s", factor, run.seconds, run.steps)
    # (2) One new day at this size, in lakehouse B of its own: a cold make build on the history, then
    # make build with the last day added. This is what costs bench-scale its extra time, two more builds
    # per factor (the cold one about as long as the pipeline's build step); (1) stays as it was measured
    # before, a cold pipeline on the whole file.
    new_day = one_new_day(events, folder / "new-day", build)
    shutil.rmtree(folder / "new-day", ignore_errors=True)
    return ScalePoint(factor, users, lines, generated, run, new_day)


SCALE_HEADER = ("factor", "cold make pipeline", "peak memory", "cold make build", "one new day",
                "new day / cold build", "stages and input")


def scale_rows(points: list[ScalePoint]) -> list[tuple[str, ...]]:
    """The growth table: per factor the cold pipeline, the history's cold build, one new day and their ratio."""
    rows = [SCALE_HEADER,
            (f"target at {SCALE_TARGET_FACTOR}x", "", "", "", SCALE_NEW_DAY_TARGET, SCALE_SHARE_TARGET,
             "cold make build: all but the last day, new lakehouse; one new day: make build after adding it")]
    previous = None
    for point in points:
        per_million = ""
        if previous:
            extra = max(point.events - previous.events, 1)
            marginal = (point.pipeline.seconds - previous.pipeline.seconds) / extra * 1e6
            per_million = f"; {marginal:.0f} s per extra million events"
        previous = point
        rows.append((f"{point.factor}x ({point.users} users)", f"{point.pipeline.seconds:.0f} s",
                     f"{point.pipeline.peak_mb:.0f} MB", f"{point.new_day.cold.seconds:.0f} s",
                     f"{point.new_day.incremental.seconds:.0f} s", f"{point.new_day.share * 100:.0f} %",
                     f"{point.events:,} events, {point.history_events:,} before the last day "
                     f"(generated in {point.generated_seconds:.0f} s); {point.pipeline.stages}{per_million}"))
    return rows


def new_day_curve(points: list[ScalePoint]) -> str:
    """One line to read the cost of one new day against the size of the history: it should be nearly flat."""
    return "new-day curve (events in history: one new day): " + "; ".join(
        f"{point.factor}x {point.history_events:,}: {point.new_day.incremental.seconds:.1f} s" for point in points)


def scale(factors: list[int], work: Path, days: int, load_seconds: float) -> tuple[list[tuple[str, ...]], str]:
    """`make bench-scale`: the growth table and the new-day curve."""
    start = min(cold_start(), cold_start())
    points = []
    for factor in factors:
        points.append(scale_point(factor, work, days))
        log.info("%s", scale_rows(points)[-1])
        if factor != factors[-1]:
            shutil.rmtree(work / f"x{factor}", ignore_errors=True)
    rows = scale_rows(points)
    rows.append(widened(("Spark cold start", f"{start:.1f} s", "", f"{os.cpu_count()} cores"), len(SCALE_HEADER)))
    dash = dashboard_figures(work / f"x{factors[-1]}" / "home", load_seconds)
    rows += [widened(row, len(SCALE_HEADER)) for row in dashboard_rows(dash)]
    return rows, new_day_curve(points)


def scale_factors(text: str) -> list[int]:
    """--scale's argument: comma-separated positive whole numbers."""
    try:
        factors = [int(factor) for factor in text.split(",")]
    except ValueError:
        factors = []
    if not factors or min(factors) < 1:
        raise argparse.ArgumentTypeError(f"not comma-separated positive whole numbers: {text!r}")
    return factors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparkify.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=Path, default=DEFAULT_EVENTS,
                        help="JSON-lines file to benchmark on (default: ../shared es_small)")
    parser.add_argument("--scale", metavar="FACTORS", type=scale_factors,
                        help="comma-separated factors of 250 users over --days: the growth curve "
                             "(make bench-scale); per factor a cold pipeline on the whole log, and a cold build "
                             "of all but its last day then one new day, in a lakehouse of their own")
    parser.add_argument("--days", type=int, default=61, help="days of generated events for --scale (default 61)")
    parser.add_argument("--load-seconds", type=float, default=30, help="the dashboard's load test (default 30)")
    parser.add_argument("--work", type=Path, help="working folder (default: a new temporary one, removed after)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.scale and not args.events.is_file():
        print(f"error: no event log at {args.events}: pass --events FILE", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="sparkify-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.scale:
            rows, curve = scale(args.scale, work, args.days, args.load_seconds)
        else:
            rows, curve = bench(args.events, work, args.load_seconds), ""
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(table(rows))
    if curve:
        print(curve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
