"""A Spark standalone cluster on this machine, for the dbt `cluster` target: `python -m sparkify.cluster --help`.

`up` starts, from the pinned pyspark (its bin/spark-class and bin/spark-submit, no other Spark): PostgreSQL
as the shared Hive metastore, a master, SPARKIFY_WORKERS workers of one core each, and the Spark Thrift
Server, submitted to the master with the cluster target's `spark_conf` (profiles/profiles.yml). Each
process writes its log and pid under $SPARKIFY_HOME/cluster/; a service already running is left alone, so
`up` twice is harmless. `down` stops exactly those pids and keeps the data; `status` shows what runs.
`submit MODULE [ARGS]` runs a module of the project (models_ml.train, models_ml.score) with spark-submit
on the master, with the same settings as the Thrift Server, so it reads and writes the same tables.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sparkify import settings as cfg
from sparkify.spark import check_format_unchanged, profile_conf

log = logging.getLogger("sparkify")

TARGET = "cluster"  # the dbt target whose `spark_conf` the cluster's applications get
THRIFT_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
THRIFT_APP = "sparkify-thrift-server"
METASTORE_DB = "metastore"
# The master's and workers' own heap; the work runs in executors (SPARKIFY_EXECUTOR_MEMORY each).
DAEMON_MEMORY = "512m"
# Where Debian's postgresql package puts initdb and postgres when they are not on PATH.
POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
START_TIMEOUT_S = 300  # the Thrift Server needs most of it: a SparkContext, executors and the metastore
STOP_TIMEOUT_S = 30


class ClusterError(cfg.SettingsError):
    """The cluster cannot start or be reached; the message says why and what to do."""


@dataclass(frozen=True)
class Service:
    """One process `up` starts: its name (for its .pid and .log files) and the ports it listens on."""

    name: str
    ports: tuple[tuple[int, str], ...]  # (port, the SPARKIFY_* variable that sets it)
    what: str


def services(cluster: cfg.Cluster) -> list[Service]:
    """The cluster's processes in start order (`down` stops them in reverse)."""
    workers = [
        Service(f"worker-{n}", ((cluster.worker_ui_port + n - 1, "SPARKIFY_WORKER_UI_PORT"),),
                f"Spark worker {n} (1 core, {cluster.executor_memory})")
        for n in range(1, cluster.workers + 1)
    ]
    return [
        Service("postgres", ((cluster.metastore_port, "SPARKIFY_METASTORE_PORT"),), "PostgreSQL (the metastore)"),
        Service("master", ((cluster.master_port, "SPARKIFY_MASTER_PORT"),
                           (cluster.master_ui_port, "SPARKIFY_MASTER_UI_PORT")), "Spark master"),
        *workers,
        Service("thrift-server", ((cluster.thrift_port, "SPARKIFY_THRIFT_PORT"),), "Spark Thrift Server"),
    ]


def cluster_dir(settings: cfg.Settings) -> Path:
    return settings.home / "cluster"


def pid_file(settings: cfg.Settings, name: str) -> Path:
    return cluster_dir(settings) / f"{name}.pid"


def log_file(settings: cfg.Settings, name: str) -> Path:
    return cluster_dir(settings) / f"{name}.log"


def spark_home() -> Path:
    """The pinned pyspark's Spark distribution (bin/, jars/): SPARK_HOME of every cluster process."""
    import pyspark

    return Path(pyspark.__file__).parent


def spark_bin(name: str) -> Path:
    """A script of that distribution (bin/spark-class, bin/spark-submit)."""
    return spark_home() / "bin" / name


def running_pid(settings: cfg.Settings, name: str) -> int | None:
    """The pid in `name`.pid if that process is alive and is this cluster's: its command line names the
    cluster folder (a pid reused by another process after a crash is not ours to stop)."""
    try:
        pid = int(pid_file(settings, name).read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError, IndexError):
        return None
    return pid if alive(pid) and str(cluster_dir(settings)) in cmdline else None


def port_free(host: str, port: int) -> bool:
    if answers(host, port, timeout=1.0) is None:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def answers(host: str, port: int, timeout: float = 2.0) -> str | None:
    """None when something accepts TCP connections on host:port, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as error:
        return error.strerror or str(error)


def master_state(cluster: cfg.Cluster) -> dict | None:
    """The master's JSON API (/json/: workers, applications), or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"{cluster.master_ui}json/", timeout=3) as response:
            return json.load(response)
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- PostgreSQL


def postgres_bin_dir() -> Path:
    """The directory holding initdb and postgres: on PATH, else Debian's; a clear message without them."""
    found = shutil.which("initdb")
    if found and (Path(found).resolve().parent / "postgres").exists():
        return Path(found).resolve().parent
    dirs = [Path(d) for d in glob.glob(POSTGRES_BIN_GLOB) if (Path(d) / "postgres").exists()]
    if dirs:
        return max(dirs, key=lambda d: [int(p) for p in d.parent.name.split(".") if p.isdigit()] or [0])
    raise ClusterError(
        "PostgreSQL is not installed, and the cluster's metastore runs on it. Install it with "
        "`sudo apt-get install postgresql` (Debian/Ubuntu; macOS: `brew install postgresql`), or put "
        "the directory holding its initdb and postgres programs on PATH.")


def postgres_user() -> pwd.struct_passwd | None:
    """The OS user PostgreSQL runs as when we are root (it refuses to run as root); None otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise ClusterError(
            "running as root, PostgreSQL needs the `postgres` OS user, which does not exist: "
            "`apt-get install postgresql` creates it (or run `make cluster-up` as another user)") from None


def check_reachable_by(user: pwd.struct_passwd, path: Path) -> None:
    """PostgreSQL, running as `user`, must be able to walk down to its data folder."""
    groups = {user.pw_gid, *os.getgrouplist(user.pw_name, user.pw_gid)}
    for folder in [*reversed(path.parents), path]:
        st = folder.stat()
        if st.st_uid == user.pw_uid:
            ok = st.st_mode & 0o100
        elif st.st_gid in groups:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            raise ClusterError(
                f"PostgreSQL runs as the `{user.pw_name}` user, who cannot enter {folder} on the way to "
                f"its data folder {path}. Allow it (`chmod o+x {folder}`) or choose a SPARKIFY_HOME it "
                "can reach.")


def prepare_postgres(settings: cfg.Settings, bin_dir: Path, user: pwd.struct_passwd | None) -> Path:
    """Create the metastore's database cluster in $SPARKIFY_HOME/cluster/postgres, once."""
    data = cluster_dir(settings) / "postgres"
    data.mkdir(parents=True, exist_ok=True)
    if user is not None:
        os.chown(data, user.pw_uid, user.pw_gid)
        check_reachable_by(user, data)
    data.chmod(0o700)
    if (data / "PG_VERSION").exists():
        return data
    log.info("postgres: initdb %s", data)
    with open(log_file(settings, "postgres"), "ab") as out:
        result = subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", settings.cluster.metastore_user,
             "--auth=trust", "-E", "UTF8", "--locale=C"],
            stdout=out, stderr=subprocess.STDOUT, cwd=data, **as_user(user))
    if result.returncode != 0:
        raise ClusterError(f"initdb failed (exit {result.returncode}); see {log_file(settings, 'postgres')}")
    return data


def as_user(user: pwd.struct_passwd | None) -> dict:
    return {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def create_metastore_db(settings: cfg.Settings, bin_dir: Path) -> None:
    """The `metastore` database, with the Hive metastore's tables created at once (`create_metastore_schema`)."""
    if query(settings, bin_dir, "postgres", f"select 1 from pg_database where datname = '{METASTORE_DB}'") != "1":
        query(settings, bin_dir, "postgres", f"create database {METASTORE_DB}")
        log.info("postgres: created database %s", METASTORE_DB)
    if query(settings, bin_dir, METASTORE_DB, "select 1 from pg_tables where tablename = 'TBLS'") != "1":
        create_metastore_schema(settings)


def query(settings: cfg.Settings, bin_dir: Path, database: str, sql: str) -> str:
    """Run one statement with psql on the local metastore server; its output."""
    cluster = settings.cluster
    result = subprocess.run(
        [str(bin_dir / "psql"), "-h", cluster.master_host, "-p", str(cluster.metastore_port),
         "-U", cluster.metastore_user, "-d", database, "-tAc", sql], capture_output=True, text=True)
    if result.returncode != 0:
        raise ClusterError(f"PostgreSQL refused `{sql}`: {result.stderr.strip()}")
    return result.stdout.strip()


def create_metastore_schema(settings: cfg.Settings) -> None:
    """Create every table of the Hive metastore, from the metadata in Spark's hive-metastore jar
    (package.jdo), with DataNucleus' SchemaTool. Left to Spark's Hive client (datanucleus.schema.
    autoCreateAll), the tables appear one by one when first used, and on PostgreSQL the first CREATE
    TABLE deadlocks: adding TBL_PRIVS' foreign key waits for the lock on TBLS that the same request's
    open transaction holds. Pyspark ships no Hive schematool scripts to do this instead."""
    jdo = {key.removeprefix("spark.hadoop."): value
           for key, value in profile_conf(settings, TARGET, "spark_conf").items()
           if key.startswith("spark.hadoop.javax.jdo.option.")}
    # Hive 2.3's own settings for DataNucleus (HiveConf defaults), so the names match what it reads.
    jdo.update({"datanucleus.identifierFactory": "datanucleus1",
                "datanucleus.rdbms.useLegacyNativeValueStrategy": "true"})
    props = cluster_dir(settings) / "metastore-schema.properties"
    props.write_text("".join(f"{key}={value}\n" for key, value in jdo.items()))
    props.chmod(0o600)
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java") or "java"
    classpath = ":".join([str(spark_home() / "jars" / "*"), *cfg.metastore_jdbc_jars()])
    started = time.monotonic()
    with open(log_file(settings, "postgres"), "ab") as out:
        result = subprocess.run(
            [java, "-cp", classpath, "org.datanucleus.store.schema.SchemaTool",
             "-create", "-api", "JDO", "-props", str(props), "package.jdo"],
            stdout=out, stderr=subprocess.STDOUT, cwd=cluster_dir(settings))
    if result.returncode != 0:
        raise ClusterError(f"creating the metastore's tables failed (exit {result.returncode}); see "
                           f"{log_file(settings, 'postgres')}")
    log.info("postgres: created the Hive metastore's tables in %.0fs", time.monotonic() - started)


# ---------------------------------------------------------------- starting and stopping


def start_process(settings: cfg.Settings, name: str, argv: list[str], env: dict[str, str],
                  user: pwd.struct_passwd | None = None) -> int:
    """Start one service in its own session, its output appended to cluster/<name>.log; write its pid."""
    out = open(log_file(settings, name), "ab")
    out.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S')} sparkify.cluster starts: {' '.join(argv)}\n".encode())
    out.flush()
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                               env=env, cwd=cluster_dir(settings), start_new_session=True, **as_user(user))
    out.close()
    pid_file(settings, name).write_text(f"{process.pid}\n")
    return process.pid


def wait_until(settings: cfg.Settings, name: str, pid: int, ready, what: str,
               timeout: float = START_TIMEOUT_S) -> float:
    """Poll `ready()` until true; fail early, with the end of its log, if the process has exited."""
    started = time.monotonic()
    while not ready():
        if not alive(pid):
            raise ClusterError(f"{name} exited before {what}; the end of {log_file(settings, name)}:\n"
                               + log_tail(log_file(settings, name)))
        if time.monotonic() - started > timeout:
            raise ClusterError(f"{name} did not get {what} within {timeout:.0f}s; see {log_file(settings, name)}")
        time.sleep(0.5)
    return time.monotonic() - started


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def spark_env(settings: cfg.Settings, daemon: bool = True) -> dict[str, str]:
    """The environment of every Spark process of the local cluster: this project's settings, the pinned
    pyspark as SPARK_HOME, loopback addresses, scratch space under cluster/, and a marker on the Java
    command line (-Dsparkify.cluster=...) by which `down` knows the processes as its own.
    spark-submit gives the Thrift Server the SPARK_DAEMON_* settings too (its heap is SPARK_DAEMON_MEMORY),
    so `daemon=False`, for it, sets them to a driver's: SPARKIFY_DRIVER_MEMORY, and Spark's port retries
    (its web UI takes 4041 when another Spark application holds 4040)."""
    folder = cluster_dir(settings)
    # The master and workers take exactly their configured ports or fail (Spark would try the next ones);
    # the master's REST submission server (port 6066, unused here) is off, so two clusters can coexist.
    daemon_opts = f"-Dsparkify.cluster={folder}" + (
        " -Dspark.port.maxRetries=0 -Dspark.master.rest.enabled=false" if daemon else "")
    return {
        **os.environ,
        **settings.profile_env(),
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": settings.cluster.master_host,
        "SPARK_LOCAL_DIRS": str(folder / "local"),
        "SPARK_DAEMON_MEMORY": DAEMON_MEMORY if daemon else settings.driver_memory,
        "SPARK_DAEMON_JAVA_OPTS": daemon_opts,
    }


def conf_args(settings: cfg.Settings, *extra: str) -> list[str]:
    """`--conf key=value` for every setting of the cluster target's `spark_conf`, then of `extra` blocks."""
    conf = profile_conf(settings, TARGET, "spark_conf")
    for key in extra:
        conf.update(profile_conf(settings, TARGET, key))
    return [arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")]


def start_postgres(settings: cfg.Settings, bin_dir: Path, started: list[int]) -> None:
    cluster = settings.cluster
    user = postgres_user()
    data = prepare_postgres(settings, bin_dir, user)
    argv = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(cluster.metastore_port),
            "-c", f"listen_addresses={cluster.master_host}", "-c", "unix_socket_directories="]
    pid = start_process(settings, "postgres", argv, dict(os.environ), user)
    started.append(pid)
    took = wait_until(settings, "postgres", pid, lambda: answers(cluster.master_host, cluster.metastore_port) is None,
                      "accepting connections")
    create_metastore_db(settings, bin_dir)
    log.info("postgres: pid %d, %s:%d, ready in %.0fs", pid, cluster.master_host, cluster.metastore_port, took)


def start_master(settings: cfg.Settings, started: list[int]) -> None:
    cluster = settings.cluster
    argv = [str(spark_bin("spark-class")), "org.apache.spark.deploy.master.Master",
            "--host", cluster.master_host, "--port", str(cluster.master_port),
            "--webui-port", str(cluster.master_ui_port)]
    pid = start_process(settings, "master", argv, spark_env(settings))
    started.append(pid)
    took = wait_until(settings, "master", pid, lambda: (master_state(cluster) or {}).get("status") == "ALIVE",
                      "its web UI up")
    log.info("master: pid %d, %s, ready in %.0fs", pid, cluster.master_url, took)


def start_workers(settings: cfg.Settings, workers: list[Service], started: list[int]) -> None:
    """Start the workers side by side, then wait until the master lists each one as alive."""
    cluster = settings.cluster
    launched = []
    for service in workers:
        ui_port = service.ports[0][0]
        work = cluster_dir(settings) / "work" / service.name
        work.mkdir(parents=True, exist_ok=True)
        argv = [str(spark_bin("spark-class")), "org.apache.spark.deploy.worker.Worker",
                "--host", cluster.master_host, "--cores", "1", "--memory", cluster.executor_memory,
                "--webui-port", str(ui_port), "--work-dir", str(work), cluster.master_url]
        pid = start_process(settings, service.name, argv, spark_env(settings))
        started.append(pid)
        launched.append((service.name, pid, ui_port))
    for name, pid, ui_port in launched:
        took = wait_until(settings, name, pid, lambda: worker_alive(cluster, ui_port), "registered with the master")
        log.info("%s: pid %d, 1 core, %s, ready in %.0fs", name, pid, cluster.executor_memory, took)


def start_thrift_server(settings: cfg.Settings, started: list[int]) -> None:
    cluster = settings.cluster
    argv = [str(spark_bin("spark-submit")), "--class", THRIFT_CLASS, "--name", THRIFT_APP,
            "--driver-java-options", f"-Dsparkify.cluster={cluster_dir(settings)}",
            *conf_args(settings, "thrift_server_conf"),
            "spark-internal",
            "--hiveconf", f"hive.server2.thrift.bind.host={cluster.thrift_host}",
            "--hiveconf", f"hive.server2.thrift.port={cluster.thrift_port}"]
    pid = start_process(settings, "thrift-server", argv, spark_env(settings, daemon=False))
    started.append(pid)
    log.info("thrift-server: pid %d, waiting for it to accept connections on %s:%d ...",
             pid, cluster.thrift_host, cluster.thrift_port)
    took = wait_until(settings, "thrift-server", pid, lambda: answers(cluster.thrift_host, cluster.thrift_port) is None,
                      "accepting connections")
    log.info("thrift-server: accepting connections on %s:%d after %.0fs (%s tables)",
             cluster.thrift_host, cluster.thrift_port, took, settings.table_format.name)


def worker_alive(cluster: cfg.Cluster, ui_port: int) -> bool:
    state = master_state(cluster) or {}
    return any(w.get("state") == "ALIVE" and str(w.get("webuiaddress", "")).endswith(f":{ui_port}")
               for w in state.get("workers", []))


def up(settings: cfg.Settings) -> None:
    """Start every service that is not running yet; on a failure, stop the ones this call started."""
    from sparkify.delta_jars import fetch_maven

    began = time.monotonic()
    cfg.check_java()
    bin_dir = None
    todo = [s for s in services(settings.cluster) if running_pid(settings, s.name) is None]
    for service in services(settings.cluster):
        if service not in todo:
            log.info("%s: already running, pid %d", service.name, running_pid(settings, service.name))
    for service in todo:
        for port, variable in service.ports:
            host = settings.cluster.thrift_host if service.name == "thrift-server" else settings.cluster.master_host
            if not port_free(host, port):
                raise ClusterError(
                    f"port {port} on {host} is already in use; the cluster's {service.what} would listen "
                    f"there. Stop what uses it, or choose another port with {variable}=...")
    if any(s.name == "postgres" for s in todo):
        bin_dir = postgres_bin_dir()
    if any(s.name == "thrift-server" for s in todo):
        check_format_unchanged(settings, record=True)  # the Thrift Server writes this format
    cluster_dir(settings).mkdir(parents=True, exist_ok=True)
    fetch_maven(cfg.METASTORE_JDBC_CACHE, cfg.METASTORE_JDBC, explain=jdbc_failure_message)
    started: list[int] = []
    names = {s.name for s in todo}
    try:
        if "postgres" in names:
            start_postgres(settings, bin_dir, started)
        if "master" in names:
            start_master(settings, started)
        start_workers(settings, [s for s in todo if s.name.startswith("worker-")], started)
        if "thrift-server" in names:
            start_thrift_server(settings, started)
    except BaseException:
        log.error("sparkify: cluster-up failed; stopping what it started")
        for pid in reversed(started):
            terminate(pid, signal.SIGTERM)
        for service in todo:
            pid_file(settings, service.name).unlink(missing_ok=True)
        raise
    log.info("cluster up in %.0fs: %d workers, Thrift Server on %s:%d, metastore %s",
             time.monotonic() - began, settings.cluster.workers, settings.cluster.thrift_host,
             settings.cluster.thrift_port, settings.cluster.metastore_url)
    log.info("Spark master web UI: %s", settings.cluster.master_ui)
    log.info("Build on it with SPARKIFY_TARGET=cluster make build (then make train); logs and pids in %s",
             cluster_dir(settings))


def jdbc_failure_message(coordinates: str, reason: str) -> str:
    return (f"Could not fetch the metastore's JDBC driver {coordinates} from Maven: {reason}\n"
            f"  - to supply it yourself, put the jar in {cfg.METASTORE_JDBC_CACHE} with a manifest.json "
            "naming it, or install Debian's libpostgresql-jdbc-java and copy its jar there.")


def stop(settings: cfg.Settings, name: str) -> bool:
    """Stop one service by its pid (TERM, then KILL after STOP_TIMEOUT_S); True if it was running."""
    pid = running_pid(settings, name)
    pid_file(settings, name).unlink(missing_ok=True)
    if pid is None:
        return False
    # PostgreSQL: SIGINT is its fast shutdown (SIGTERM waits for every client to leave).
    terminate(pid, signal.SIGINT if name == "postgres" else signal.SIGTERM)
    log.info("%s: stopped pid %d", name, pid)
    return True


def terminate(pid: int, sig: signal.Signals) -> None:
    """Send `sig`, wait STOP_TIMEOUT_S for the process to exit, then SIGKILL it."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    if not wait_exit([pid], STOP_TIMEOUT_S):
        log.warning("pid %d did not stop within %ds, killing it", pid, STOP_TIMEOUT_S)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        wait_exit([pid], 10)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_exit(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def executors(settings: cfg.Settings) -> list[int]:
    """Executor processes the workers started (they run in the workers' folders under cluster/work/)."""
    work = str(cluster_dir(settings) / "work") + os.sep
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (os.readlink(proc / "cwd") + os.sep).startswith(work) and alive(int(proc.name)):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def down(settings: cfg.Settings) -> None:
    """Stop the services in reverse start order, by their pids; the data stays."""
    names = [s.name for s in services(settings.cluster)]
    # Workers beyond SPARKIFY_WORKERS, from an `up` with more of them.
    names[-1:-1] = sorted({p.stem for p in cluster_dir(settings).glob("worker-*.pid")} - set(names))
    for name in reversed(names):
        if not stop(settings, name):
            log.info("%s: not running", name)
    # A worker that was killed leaves its executors to exit on their own; wait for them, then stop them.
    left = executors(settings)
    if left and not wait_exit(left, STOP_TIMEOUT_S):
        for pid in [p for p in left if alive(p)]:
            log.warning("executor pid %d outlived its worker, killing it", pid)
            os.kill(pid, signal.SIGKILL)
        wait_exit(left, 10)
    log.info("cluster down; data kept in %s", settings.home)


def status(settings: cfg.Settings) -> bool:
    """Print what runs; True when every service does."""
    all_up = True
    for service in services(settings.cluster):
        pid = running_pid(settings, service.name)
        all_up &= pid is not None
        ports = ", ".join(f"{p}" for p, _ in service.ports)
        state = f"running, pid {pid}" if pid else "not running"
        log.info("%-14s %-20s port %-12s %s", service.name, state, ports, log_file(settings, service.name))
    state = master_state(settings.cluster)
    if state:
        alive_workers = [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]
        log.info("master %s: %d alive workers, %d cores (%d in use)", settings.cluster.master_ui,
                 len(alive_workers), sum(w["cores"] for w in alive_workers),
                 sum(w["coresused"] for w in alive_workers))
        for app in state.get("activeapps", []):
            log.info("  running application %s (%s), %d cores", app["name"], app["id"], app.get("cores", 0))
        log.info("  %d completed applications", len(state.get("completedapps", [])))
    return all_up


# ---------------------------------------------------------------- spark-submit


def submit(settings: cfg.Settings, module: str, args: list[str]) -> int:
    """Run `python -m MODULE ARGS` as a spark-submit application on the master; its exit code."""
    cluster = settings.cluster
    refused = answers(cluster.master_host, cluster.master_port)
    if refused:
        raise ClusterError(
            f"the Spark master at {cluster.master_host}:{cluster.master_port} does not answer ({refused}): "
            "start the local cluster with `make cluster-up`, or point SPARKIFY_MASTER_HOST and "
            "SPARKIFY_MASTER_PORT at yours")
    if not cfg.metastore_jdbc_jars():
        raise ClusterError(f"the metastore's JDBC driver is not in {cfg.METASTORE_JDBC_CACHE}: `make cluster-up` "
                           "fetches it")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise ClusterError(f"{module}: no such Python module in the project")
    folder = cluster_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    log4j = os.environ.get("SPARKIFY_LOG4J") or str(cfg.PROFILES_DIR / "log4j2.properties")
    argv = [str(spark_bin("spark-submit")),
            # Spark's log to cluster/spark.log, errors on the console (as profiles/log4j2.properties does
            # for the embedded session).
            "--driver-java-options", f"-Dlog4j2.configurationFile={log4j} -Dsparkify.log.dir={folder}",
            *conf_args(settings), spec.origin, *args]
    env = {
        **os.environ,
        **settings.profile_env(),
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_DIRS": str(folder / "local"),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        # The module runs as `python -m` would run it: its own folder is not put first on sys.path
        # (sparkify/dbt.py would hide the dbt package).
        "PYTHONSAFEPATH": "1",
        "SPARKIFY_SPARK_SUBMIT": "1",
    }
    if is_loopback(cluster.master_host):  # executors on this machine reach the driver over loopback too
        env["SPARK_LOCAL_IP"] = cluster.master_host
    log.info("sparkify: spark-submit %s %s on %s", module, " ".join(args), cluster.master_url)
    return subprocess.run(argv, env=env).returncode


def is_loopback(host: str) -> bool:
    try:
        return socket.gethostbyname(host).startswith("127.")
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sparkify.cluster",
        description="A Spark standalone cluster on this machine for SPARKIFY_TARGET=cluster: PostgreSQL "
                    "metastore, master, workers and Thrift Server, their logs and pids under "
                    "$SPARKIFY_HOME/cluster/. Ports and sizes come from SPARKIFY_* variables (README, "
                    "'Running on a cluster').")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start what is not running yet, wait for the Thrift Server, print the "
                                   "master's web UI address")
    commands.add_parser("down", help="stop the processes `up` started, by their pids; keep the data")
    commands.add_parser("status", help="show what runs (exit 1 unless everything does)")
    run = commands.add_parser("submit", help="run a project module with spark-submit on the master, e.g. "
                                             "`submit models_ml.train --score`")
    run.add_argument("module", help="a Python module of the project, as for `python -m`")
    run.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        settings = cfg.load()
        if args.command == "up":
            up(settings)
        elif args.command == "down":
            down(settings)
        elif args.command == "status":
            return 0 if status(settings) else 1
        else:
            return submit(settings, args.module, args.args)
    except cfg.SettingsError as error:
        print(f"sparkify: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
