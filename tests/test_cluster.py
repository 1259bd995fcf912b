"""The cluster target, for real: `make cluster-up` starts PostgreSQL, a Spark master, two workers and the Thrift
Server on this machine; the suite's fixture is built through it, trained and scored with spark-submit, and its
user_features must equal the embedded build's (conftest's `built_lakehouse`, the same raw files) row for row.

The cluster gets its own SPARKIFY_HOME, in a folder PostgreSQL's user can reach when the suite runs as root
(pytest's own tmp folders are private), and ports picked free, so it clashes with nothing. `make cluster-down`
runs whatever happens, and the fixture then kills anything left that names the cluster's folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from conftest import BOOKKEEPING
from sparkify import cluster as cl
from sparkify import settings as cfg

pytestmark = [pytest.mark.cluster]

CLUSTER_UP_TIMEOUT_S = 600
STEP_TIMEOUT_S = 1500


def free_ports(count: int) -> list[int]:
    """`count` consecutive free loopback ports (the workers' UI ports follow one another)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count < 65535 and all(cl.port_free("127.0.0.1", base + i) for i in range(count)):
            return [base + i for i in range(count)]
    raise RuntimeError("no free ports")


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without the suite's own lakehouse settings, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARKIFY_", "DBT_"))}
    return {**env, **values}


def make(env: dict[str, str], *targets: str, timeout: float = STEP_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run(["make", *targets], cwd=cfg.PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def processes_naming(folder: Path) -> list[int]:
    """Live processes whose command line or working folder is in `folder`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if (str(folder) in cmdline or cwd.startswith(str(folder))) and cl.alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def table_rows(home: Path, table: str, table_format: str) -> pd.DataFrame:
    """A table read from its files (no Spark), rows in key order, without load times."""
    path = home / "warehouse" / "sparkify.db" / table
    if table_format == "delta":
        from deltalake import DeltaTable

        frame = DeltaTable(str(path)).to_pandas()
    else:
        frame = ds.dataset(str(path), format="parquet", partitioning="hive").to_table().to_pandas()
    frame = frame.drop(columns=[c for c in BOOKKEEPING if c in frame.columns])
    return frame[sorted(frame.columns)].sort_values(["user_id", "as_of_date"]).reset_index(drop=True)


@contextlib.contextmanager
def holding_spark_ui_port():
    """Port 4040 taken, as another Spark application on the machine takes it: the Thrift Server's web UI
    must move to the next port, not stop the cluster from starting."""
    with socket.socket() as taken:
        try:
            taken.bind(("0.0.0.0", 4040))
            taken.listen()
        except OSError:
            pass  # something holds it already
        yield


@pytest.fixture(scope="module")
def cluster(built_lakehouse, fixture_files):
    """A running local cluster with its own home, on the suite's raw files; down and gone afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="sparkify-cluster-"))
    folder.chmod(0o755)  # PostgreSQL runs as its own user when we are root
    home = folder / "home"
    master, master_ui, thrift, metastore, worker_ui, _ = free_ports(6)
    env = clean_env(
        SPARKIFY_HOME=str(home),
        SPARKIFY_EVENTS=str(fixture_files.raw_dir),
        SPARKIFY_TABLE_FORMAT=built_lakehouse.table_format.name,
        SPARKIFY_MASTER_PORT=str(master),
        SPARKIFY_MASTER_UI_PORT=str(master_ui),
        SPARKIFY_WORKER_UI_PORT=str(worker_ui),
        SPARKIFY_THRIFT_PORT=str(thrift),
        SPARKIFY_METASTORE_PORT=str(metastore),
    )
    try:
        started = time.monotonic()
        with holding_spark_ui_port():
            up = make(env, "cluster-up", timeout=CLUSTER_UP_TIMEOUT_S)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        print(f"cluster up in {time.monotonic() - started:.0f}s")
        yield env, home, up.stdout
    finally:
        down = make(env, "cluster-down", timeout=300)
        left = processes_naming(home / "cluster")
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)
        assert down.returncode == 0, down.stdout[-2000:] + down.stderr[-2000:]
        assert not left, f"processes left after cluster-down: {left}"


@pytest.mark.spark
@pytest.mark.slow
def test_the_cluster_builds_trains_and_scores_like_the_embedded_lakehouse(cluster, built_lakehouse):
    env, home, up_log = cluster
    on_cluster = {**env, "SPARKIFY_TARGET": "cluster"}
    table_format = built_lakehouse.table_format.name

    # cluster-up printed the master's web UI, and twice is harmless.
    master_ui = f"http://127.0.0.1:{env['SPARKIFY_MASTER_UI_PORT']}/"
    assert f"Spark master web UI: {master_ui}" in up_log
    again = make(env, "cluster-up", timeout=120)
    assert again.returncode == 0 and again.stdout.count("already running") == 5, again.stdout

    # The models through the Thrift Server; their data tests are the same SQL as on the embedded build,
    # which runs them all (../shared/acceptance/cluster runs them on the cluster too).
    build = make(on_cluster, "build", "DBT_ARGS=--exclude resource_type:test resource_type:unit_test")
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-2000:]

    got = table_rows(home, "user_features", table_format)
    want = table_rows(built_lakehouse.home, "user_features", table_format)
    assert len(got) == len(want) > 0
    assert list(got.columns) == list(want.columns)
    assert got[["user_id", "as_of_date"]].equals(want[["user_id", "as_of_date"]])
    for column in want.columns:
        if pd.api.types.is_float_dtype(want[column]):
            # Sums of doubles (listen hours) differ in the last bits when executors add them in another order.
            assert np.allclose(got[column], want[column], rtol=1e-12, atol=1e-12, equal_nan=True), column
        else:
            assert got[column].equals(want[column]), column

    train = make(on_cluster, "train", "TRAIN_ARGS=--quick")
    assert train.returncode == 0, train.stdout[-4000:] + train.stderr[-2000:]
    assert "spark-submit models_ml.train" in train.stdout
    scores = table_rows(home, "churn_scores", table_format)
    assert len(scores) > 0 and scores["churn_probability"].between(0, 1).all()
    runs = home / "warehouse" / "sparkify.db" / "model_runs"
    assert runs.is_dir() and (home / "models" / "latest").is_file()

    with urllib.request.urlopen(f"{master_ui}json/", timeout=10) as response:
        state = json.load(response)
    assert len([w for w in state["workers"] if w["state"] == "ALIVE"]) >= 2
    apps = {a["name"] for a in state["activeapps"] + state["completedapps"]}
    assert {cl.THRIFT_APP, "sparkify-train"} <= apps, apps

    status = make(env, "cluster-status", timeout=60)
    assert status.returncode == 0 and "thrift-server  running" in status.stdout, status.stdout


def test_a_build_on_the_cluster_target_fails_at_once_when_no_thrift_server_answers(tmp_path):
    (port,) = free_ports(1)
    env = clean_env(SPARKIFY_HOME=str(tmp_path / "home"), SPARKIFY_TARGET="cluster",
                    SPARKIFY_TABLE_FORMAT="parquet", SPARKIFY_THRIFT_PORT=str(port),
                    SPARKIFY_EVENTS=str(Path(__file__).parent / "fixtures" / "eventsim_sample.json.gz"))
    started = time.monotonic()
    result = subprocess.run([str(cfg.PROJECT_ROOT / ".venv" / "bin" / "python"), "-m", "sparkify.dbt", "build"],
                            cwd=cfg.PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert time.monotonic() - started < 30
    assert f"no Spark Thrift Server answers at 127.0.0.1:{port}" in result.stderr


def test_cluster_up_names_the_port_that_is_taken_and_starts_nothing(tmp_path):
    master, master_ui, thrift, metastore, worker_ui, _ = free_ports(6)
    home = tmp_path / "home"
    env = clean_env(SPARKIFY_HOME=str(home), SPARKIFY_TABLE_FORMAT="parquet",
                    SPARKIFY_MASTER_PORT=str(master), SPARKIFY_MASTER_UI_PORT=str(master_ui),
                    SPARKIFY_WORKER_UI_PORT=str(worker_ui), SPARKIFY_THRIFT_PORT=str(thrift),
                    SPARKIFY_METASTORE_PORT=str(metastore))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", thrift))
        taken.listen()
        result = subprocess.run([str(cfg.PROJECT_ROOT / ".venv" / "bin" / "python"), "-m", "sparkify.cluster", "up"],
                                cwd=cfg.PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"port {thrift} on 127.0.0.1 is already in use" in result.stderr
    assert "SPARKIFY_THRIFT_PORT" in result.stderr
    assert not list((home / "cluster").glob("*.pid"))


def test_cluster_up_says_how_to_install_postgresql_when_it_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(cl.shutil, "which", lambda name: None)
    monkeypatch.setattr(cl, "POSTGRES_BIN_GLOB", str(tmp_path / "none" / "*" / "bin"))
    with pytest.raises(cl.ClusterError, match="apt-get install postgresql"):
        cl.postgres_bin_dir()


def test_the_thrift_server_gets_a_drivers_heap_and_the_daemons_keep_theirs(tmp_path):
    settings = cfg.load({"SPARKIFY_HOME": str(tmp_path), "SPARKIFY_TABLE_FORMAT": "parquet",
                         "SPARKIFY_DRIVER_MEMORY": "5g"})
    thrift, daemon = cl.spark_env(settings, daemon=False), cl.spark_env(settings)
    # spark-submit sizes the Thrift Server's heap from SPARK_DAEMON_MEMORY
    assert thrift["SPARK_DAEMON_MEMORY"] == settings.driver_memory == "5g"
    assert "spark.port.maxRetries" not in thrift["SPARK_DAEMON_JAVA_OPTS"]
    assert daemon["SPARK_DAEMON_MEMORY"] == cl.DAEMON_MEMORY
    assert "-Dspark.port.maxRetries=0" in daemon["SPARK_DAEMON_JAVA_OPTS"]
