"""Benchmarks of the lakehouse build and training: `python -m sparkify.bench` (or `make bench`).

Each scenario runs its command (`python -m sparkify.dbt build`, then the two steps of `make
train`) in a fresh process, as a user would, and
reports wall time and the peak RSS of that Python process (the Spark JVM it launches is a
separate process and not included; its heap is capped by SPARKIFY_DRIVER_MEMORY).
"""

from __future__ import annotations

import argparse
import gzip
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sparkify import settings as cfg

log = logging.getLogger("sparkify.bench")
DEFAULT_EVENTS = cfg.PROJECT_ROOT.parent / "shared" / "data" / "eventsim" / "es_small.json.gz"


BUILD = ("sparkify.dbt", "build")
TRAIN = ("models_ml.train", "--score")
CUSTOMERS = ("sparkify.dbt", "build", "--select", "customers")


def timed(env: dict[str, str], command: tuple[str, ...] = BUILD) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one `python -m <command>` process (JVM not included)."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", *command], env={**os.environ, **env},
        cwd=cfg.PROJECT_ROOT, capture_output=True, text=True,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, peak_mb


def split_last_day(source: Path, raw: Path) -> Path:
    """Write all but the last UTC day of `source` into raw/, return the last day as its own file."""
    import json

    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    last_day = max(json.loads(line)["ts"] for line in lines) // 86_400_000 * 86_400_000
    early = [line for line in lines if json.loads(line)["ts"] < last_day]
    late = [line for line in lines if json.loads(line)["ts"] >= last_day]
    with gzip.open(raw / "events-early.json.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(early) + "\n")
    late_file = raw.parent / "events-last-day.json"
    late_file.write_text("\n".join(late) + "\n", encoding="utf-8")
    return late_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=Path, default=DEFAULT_EVENTS,
                        help="JSON-lines file to build on (default: es_small)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark lakehouse")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    work = Path(tempfile.mkdtemp(prefix="sparkify-bench-"))
    raw = work / "raw"
    raw.mkdir()
    try:
        late_file = split_last_day(args.events, raw)
        env = {"SPARKIFY_HOME": str(work / "home"), "SPARKIFY_EVENTS": str(raw)}
        rows = []
        for name, prepare, command in (
            ("cold build (all but the last day)", None, BUILD),
            ("no-change re-run", None, BUILD),
            ("incremental: add the last day", lambda: shutil.copy(late_file, raw / late_file.name), BUILD),
            ("make train: train + score", None, TRAIN),
            ("make train: refresh customers", None, CUSTOMERS),
        ):
            if prepare:
                prepare()
            seconds, peak = timed(env, command)
            rows.append((name, seconds, peak))
            log.info("%-36s %7.1f s", name, seconds)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    log.info("\n%-36s %9s %22s", "scenario", "seconds", "Python peak RSS (MB)")
    for name, seconds, peak in rows:
        log.info("%-36s %9.1f %22.0f", name, seconds, peak)
    train_total = sum(seconds for name, seconds, _ in rows if name.startswith("make train"))
    log.info("%-36s %9.1f", "make train (both steps)", train_total)
    log.info("input: %s, %d cores", args.events, os.cpu_count() or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
