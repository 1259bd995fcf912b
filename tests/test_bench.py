"""The benchmarks' measurement and tables, with stand-ins for the commands: each pipeline step gets the peak
memory of the process tree while it ran; one new day is the history built cold, then its last day added; the
bench-scale table puts each factor's cold build, new day and their ratio next to its cold pipeline."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import sys
import textwrap
from pathlib import Path

import pytest

from sparkify.bench import measured, new_day_curve, one_new_day, scale_point, scale_rows, table, widened

# A stand-in for the pipeline: it logs its steps as `make pipeline` does, holding a known amount of memory
# in each, in a child process for the second (the tree is measured, as with Spark's JVM).
FAKE_PIPELINE = textwrap.dedent("""
    import subprocess, sys, time

    def hold(mb):
        block = bytearray(mb << 20)
        block[::4096] = b"\\1" * len(block[::4096])
        return block

    block = hold(40)
    time.sleep(1.0)
    print("sparkify: pipeline step build took 1.0 s", flush=True)
    del block
    child = subprocess.Popen([sys.executable, "-c", {child!r}])
    time.sleep(1.5)
    child.wait()
    print("sparkify: pipeline step train and score took 1.5 s", flush=True)
    time.sleep(1.0)
    print("sparkify: pipeline step customers took 1.0 s", flush=True)
""").format(child="import time; b = bytearray(200 << 20); b[::4096] = b'\\1' * len(b[::4096]); time.sleep(1.2)")


def test_each_step_gets_the_peak_of_the_process_tree_while_it_ran(tmp_path):
    script = tmp_path / "fake_pipeline.py"
    script.write_text(FAKE_PIPELINE)
    run = measured([sys.executable, str(script)], {})
    assert run.steps == {"build": 1.0, "train and score": 1.5, "customers": 1.0}
    build, train, customers = run.step_peak_mb
    # The child's 200 MB count towards the step it ran in, and towards the run's peak; no other step holds them.
    assert train >= 200 > max(build, customers)
    assert build >= 40
    assert run.peak_mb == max(run.step_peak_mb)
    assert "train and score 2 s (peak" in run.stages


# A stand-in for `make build` and `make pipeline`: it counts the lines of each raw file in SPARKIFY_EVENTS,
# records them in SPARKIFY_HOME/runs.jsonl, and takes 0.1 s plus 1 s per 50,000 events it has not loaded
# into that lakehouse before (an incremental build's cost), logging it as a pipeline step.
FAKE_BUILD = textwrap.dedent("""
    import gzip, json, os, sys, time
    from pathlib import Path

    home, raw = Path(os.environ["SPARKIFY_HOME"]), Path(os.environ["SPARKIFY_EVENTS"])
    home.mkdir(parents=True, exist_ok=True)
    files = {}
    for path in sorted(raw.iterdir()):
        with (gzip.open if path.suffix == ".gz" else open)(path, "rt") as handle:
            files[path.name] = sum(1 for _ in handle)
    runs = home / "runs.jsonl"
    loaded = set()
    if runs.exists():
        for line in runs.read_text().splitlines():
            loaded |= set(json.loads(line))
    seconds = 0.1 + sum(n for name, n in files.items() if name not in loaded) / 50_000
    time.sleep(seconds)
    with runs.open("a") as handle:
        handle.write(json.dumps(files) + "\\n")
    print(f"sparkify: pipeline step {sys.argv[1]} took {seconds:.1f} s", flush=True)
""")

DAY = 86_400_000
LAST_MIDNIGHT = 1_538_524_800_000  # 2018-10-03 00:00 UTC


def fake(tmp_path: Path, step: str) -> tuple[str, ...]:
    script = tmp_path / "fake_build.py"
    script.write_text(FAKE_BUILD)
    return (sys.executable, str(script), step)


def test_one_new_day_builds_the_history_cold_then_adds_only_the_last_day(tmp_path):
    # Three days, out of order; an event exactly at the last midnight belongs to the last day.
    stamps = [LAST_MIDNIGHT - 2 * DAY + 5, LAST_MIDNIGHT + 3_000, LAST_MIDNIGHT - 1, LAST_MIDNIGHT,
              LAST_MIDNIGHT - DAY, LAST_MIDNIGHT + DAY - 1, LAST_MIDNIGHT - DAY + 7]
    lines = [json.dumps({"ts": ts, "userId": str(i), "page": "NextSong"}) for i, ts in enumerate(stamps)]
    events = tmp_path / "events.json.gz"
    with gzip.open(events, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    history = [lines[i] for i in (0, 2, 4, 6)]
    last_day = [lines[i] for i in (1, 3, 5)]

    new_day = one_new_day(events, tmp_path / "new-day", fake(tmp_path, "build"))

    runs = [json.loads(line) for line in (tmp_path / "new-day" / "home" / "runs.jsonl").read_text().splitlines()]
    # The cold build saw the history only; the second build, in the same lakehouse, the day's file added.
    assert runs == [{"events-early.json.gz": 4}, {"events-early.json.gz": 4, "events-last-day.json": 3}]
    with gzip.open(tmp_path / "new-day" / "raw" / "events-early.json.gz", "rt", encoding="utf-8") as handle:
        assert handle.read().splitlines() == history
    assert (tmp_path / "new-day" / "raw" / "events-last-day.json").read_text().splitlines() == last_day
    assert new_day.day_events == 3
    # 4 events cold, then 3 new: the stand-in's own cost model.
    assert new_day.cold.steps == {"build": 0.1} and new_day.incremental.steps == {"build": 0.1}
    assert new_day.cold.seconds >= 0.1 + 4 / 50_000 and new_day.incremental.seconds >= 0.1 + 3 / 50_000


@pytest.mark.slow
def test_bench_scale_rows_give_each_factor_its_cold_build_one_new_day_and_their_ratio(tmp_path):
    days = 3
    points = [scale_point(factor, tmp_path, days, pipeline=fake(tmp_path, "pipeline"), build=fake(tmp_path, "build"))
              for factor in (1, 2)]
    rows = scale_rows(points)

    assert rows[0] == ("factor", "cold make pipeline", "peak memory", "cold make build", "one new day",
                       "new day / cold build", "stages and input")
    assert rows[1][:6] == ("target at 16x", "", "", "", "<= 60 s", "<= 25 %")
    previous = None
    for factor, point, row in zip((1, 2), points, rows[2:], strict=True):
        folder = tmp_path / f"x{factor}"
        # The generated log, read on its own: its events, and those before its last UTC day.
        with gzip.open(folder / "raw" / "events.json.gz", "rt", encoding="utf-8") as handle:
            dates = [dt.datetime.fromtimestamp(json.loads(line)["ts"] / 1000, dt.timezone.utc).date()
                     for line in handle]
        last = max(dates)
        assert last == dt.date(2018, 10, 1) + dt.timedelta(days=days - 1)
        history = sum(date < last for date in dates)
        # The pipeline ran once, on the whole file, in a lakehouse of its own; the new day's one is removed.
        assert [json.loads(line) for line in (folder / "home" / "runs.jsonl").read_text().splitlines()] == [
            {"events.json.gz": len(dates)}]
        assert not (folder / "new-day").exists()
        assert point.events == len(dates) and point.history_events == history

        cold, new = point.new_day.cold.seconds, point.new_day.incremental.seconds
        # The stand-in's cost model: the history cold, then only the day's events.
        assert cold >= 0.1 + history / 50_000 and new >= 0.1 + (len(dates) - history) / 50_000
        assert row[:6] == (f"{factor}x ({250 * factor} users)", f"{round(point.pipeline.seconds)} s",
                           f"{round(point.pipeline.peak_mb)} MB", f"{round(cold)} s", f"{round(new)} s",
                           f"{round(100 * new / cold)} %")
        assert row[6].startswith(f"{len(dates):,} events, {history:,} before the last day (generated in ")
        assert "; pipeline " in row[6]
        if previous:
            extra = (point.pipeline.seconds - previous.pipeline.seconds) / (len(dates) - previous.events) * 1e6
            assert row[6].endswith(f"; {round(extra)} s per extra million events")
        previous = point

    assert new_day_curve(points) == "new-day curve (events in history: one new day): " + "; ".join(
        f"{p.factor}x {p.history_events:,}: {p.new_day.incremental.seconds:.1f} s" for p in points)

    # One table: every row of the scale run, the cold start's and the dashboard's too, in the same columns.
    rows.append(widened(("Spark cold start", "5.0 s", "", "2 cores"), len(rows[0])))
    assert rows[-1] == ("Spark cold start", "5.0 s", "", "", "", "", "2 cores")
    text = table(rows).splitlines()
    starts = [text[0].index(name) for name in rows[0]]
    for line, row in zip(text[2:], rows[1:], strict=True):
        for start, cell in zip(starts, row):
            assert line[start:].startswith(cell)
