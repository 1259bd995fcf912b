"""Parquet stays supported: the lakehouse build tests and the replay run once more with
SPARKIFY_TABLE_FORMAT=parquet.

A SparkSession's catalog and jars are fixed when it starts, so the Parquet run is a second pytest
process over tests/test_lakehouse.py and tests/test_replay.py, with its own lakehouse; the main session
runs on Delta.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sparkify import settings as cfg

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_lakehouse_tests_pass_on_parquet(tmp_path):
    env = {**os.environ, "SPARKIFY_TABLE_FORMAT": "parquet"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "pytest"),
         "tests/test_lakehouse.py", "tests/test_replay.py",
         # Feature values are computed in SQL before any write, so one comparison with pandas, on Delta
         # in the main session, covers both formats; the Parquet job checks loads, merges and errors.
         "--deselect", "tests/test_lakehouse.py::test_user_feature_rows_and_sample_match_pandas"],
        cwd=cfg.PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
    warehouse = next((tmp_path / "pytest").glob("lakehouse*/home/warehouse"))
    for table in ("sparkify.db/bronze_events", "sparkify.db/stg_sparkify__events", "sparkify.db/user_features",
                  "replay_daily.db/sessions"):
        assert (warehouse / table).is_dir() and not (warehouse / table / "_delta_log").exists(), table
