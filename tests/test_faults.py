"""Hostile raw files: odd names, a truncated gzip, files that are not data, a file of mostly bad lines.

A small lakehouse of its own, built through the CLI like `make build` (bronze, staging and the tests
that guard them), so that each fault is a real build. Expected counts come from the files written here.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from conftest import delta_rows
from sparkify import settings as cfg

pytestmark = [pytest.mark.delta, pytest.mark.spark, pytest.mark.slow]

SELECT = ["--select", "+stg_sparkify__events", "stg_sparkify__guest_events", "quarantined_lines", "rejected_files",
          "assert_raw_lines_reconcile", "assert_quarantine_share_below_threshold", "--indirect-selection", "cautious"]
ODD_NAMES = ["day one [x] 100%.json", "we`ird'name {a,b}.json"]
NOT_DATA = ["base.json.swp", "late.json.gz.partial", ".hidden.json", "_spark.json", "base.json.bak"]


def build(home: Path, raw: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARKIFY_", "DBT_"))}
    env.update(SPARKIFY_HOME=str(home), SPARKIFY_EVENTS=str(raw), SPARKIFY_TABLE_FORMAT="delta")
    return subprocess.run([sys.executable, "-m", "sparkify.dbt", "build", *SELECT], cwd=cfg.PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=1200)


def table(home: Path, name: str):
    return delta_rows(home / "warehouse" / "sparkify.db" / name)


def lines_per_file(home: Path) -> dict[str, int]:
    """Lines bronze recorded per file, by the file's name on disk (bronze keeps Spark's URI form)."""
    from urllib.parse import unquote

    bronze = table(home, "bronze_events")
    return {os.path.basename(unquote(path.removeprefix("file:"))): int(n)
            for path, n in bronze.groupby("source_file")["line_count"].sum().items()}


def distinct_user_events(lines: list[str]) -> set[str]:
    """The distinct logged-in users' events among raw lines: what staging must hold."""
    return {json.dumps(e, sort_keys=True) for e in map(json.loads, lines) if e["userId"] != ""}


@pytest.fixture(scope="module")
def lakehouse(fixture_files, tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    raw = root / "raw"
    raw.mkdir()
    with gzip.open(fixture_files.base_file, "rt", encoding="utf-8") as source:
        lines = [next(source).rstrip("\n") for _ in range(6000)]
    written = {"base.json": lines[:3000], ODD_NAMES[0]: lines[3000:4000], ODD_NAMES[1]: lines[4000:4500]}
    for name, part in written.items():
        (raw / name).write_text("\n".join(part) + "\n", encoding="utf-8")
    late = gzip.compress(("\n".join(lines[4500:5500]) + "\n").encode())
    (raw / "late.json.gz").write_bytes(late[: len(late) // 2])  # half copied
    for name in NOT_DATA:
        (raw / name).write_text("\n".join(lines[5500:5510]) + "\n", encoding="utf-8")
    return root / "home", raw, written, late


def test_odd_names_load_once_a_truncated_gzip_is_set_aside_and_other_names_are_not_data(lakehouse):
    home, raw, written, late = lakehouse
    first = build(home, raw)
    assert first.returncode == 0, first.stdout[-3000:]
    assert f"not loading {raw / 'late.json.gz'}: truncated gzip file" in first.stderr
    assert lines_per_file(home) == {name: len(part) for name, part in written.items()}
    readable = zlib.decompressobj(wbits=31).decompress(late[: len(late) // 2]).count(b"\n")
    rejected = table(home, "rejected_files")
    assert rejected["path"].tolist() == [str(raw / "late.json.gz")]
    assert rejected["readable_lines"].tolist() == [readable]
    assert rejected["reason"][0].startswith("truncated gzip file")

    again = build(home, raw)  # no change: nothing is read twice
    assert again.returncode == 0, again.stdout[-3000:]
    assert lines_per_file(home) == {name: len(part) for name, part in written.items()}
    assert len(table(home, "stg_sparkify__events")) == len(distinct_user_events(
        [line for part in written.values() for line in part]))


def test_replacing_the_damaged_file_is_the_whole_fix(lakehouse):
    home, raw, written, late = lakehouse
    (raw / "late.json.gz").write_bytes(late)
    result = build(home, raw)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "not loading" not in result.stderr
    assert lines_per_file(home) == {**{name: len(part) for name, part in written.items()}, "late.json.gz": 1000}
    assert table(home, "rejected_files").empty


def test_a_file_of_mostly_bad_lines_stops_the_build_and_removing_it_recovers(lakehouse):
    home, raw, _, _ = lakehouse
    staged = len(table(home, "stg_sparkify__events"))
    good = (raw / "base.json").read_text().splitlines()[:10]
    bad = raw / "mostly-bad.json"
    bad.write_text("\n".join(["not json"] * 90 + good) + "\n")
    failed = build(home, raw)
    assert failed.returncode == 1
    assert "assert_quarantine_share_below_threshold" in failed.stdout and "FAIL" in failed.stdout
    assert len(table(home, "stg_sparkify__events")) == staged  # nothing downstream was published
    bronze = table(home, "bronze_events")
    from_bad = bronze[bronze["source_file"].str.endswith("mostly-bad.json")]
    assert from_bad[from_bad["record_status"] == "quarantined"]["line_count"].sum() == 90  # kept, with reasons
    bad.unlink()
    recovered = build(home, raw)
    assert recovered.returncode == 0, recovered.stdout[-3000:]


def test_a_file_changed_after_loading_is_listed_not_reread_and_loads_under_a_new_name(lakehouse, fixture_files):
    home, raw, written, late = lakehouse
    with gzip.open(fixture_files.base_file, "rt", encoding="utf-8") as source:
        appended = [next(source).rstrip("\n") for _ in range(6200)][6000:]
    base = raw / "base.json"
    loaded_size, loaded_lines = base.stat().st_size, len(written["base.json"])
    with open(base, "a", encoding="utf-8") as handle:  # another system appends to a file already loaded
        handle.write("\n".join(appended) + "\n")
    staged = len(table(home, "stg_sparkify__events"))

    changed = build(home, raw)
    assert changed.returncode == 0, changed.stdout[-3000:]
    assert "WARN" in changed.stdout and "warn_rejected_files" in changed.stdout
    rejected = table(home, "rejected_files")
    assert rejected["path"].tolist() == [str(base)]
    assert rejected["reason"][0].startswith(
        f"changed after it was loaded ({loaded_size} bytes and {loaded_lines} lines when loaded, "
        f"now {base.stat().st_size} bytes and {loaded_lines + len(appended)} lines)")
    assert "new file name" in rejected["reason"][0]
    assert lines_per_file(home)["base.json"] == loaded_lines  # the loaded version stays as it was
    assert len(table(home, "stg_sparkify__events")) == staged  # reconciliation held: the build passed

    base.rename(raw / "base-v2.json")  # the way out the reason gives
    renamed = build(home, raw)
    assert renamed.returncode == 0, renamed.stdout[-3000:]
    assert table(home, "rejected_files").empty
    assert lines_per_file(home)["base-v2.json"] == loaded_lines + len(appended)
    everything = [line for part in written.values() for line in part] + \
        gzip.decompress(late).decode().splitlines() + appended
    assert len(table(home, "stg_sparkify__events")) == len(distinct_user_events(everything))


def test_a_committed_partitioned_parquet_table_is_not_taken_for_debris(tmp_path):
    """A dynamic partition overwrite leaves partition folders and no _SUCCESS at the root: a real table."""
    from sparkify.spark import is_half_created_parquet

    table = tmp_path / "bronze_events"
    (table / "event_date=2018-10-01").mkdir(parents=True)
    (table / "event_date=2018-10-01" / "part-00000.snappy.parquet").write_bytes(b"PAR1")
    assert not is_half_created_parquet(table)
    half = tmp_path / "users"
    (half / "_temporary" / "0").mkdir(parents=True)
    (half / ".spark-staging-1").mkdir()
    assert is_half_created_parquet(half)
