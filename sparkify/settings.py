"""One place that turns SPARKIFY_* environment variables into lakehouse settings.

dbt reads them through `profiles/profiles.yml`; the ML script and the dashboard call `load()` so
that every component sees the same warehouse, metastore and table format.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROFILES_DIR = PROJECT_ROOT / "profiles"
# SPARKIFY_HOME when unset: the same folder whichever directory a command starts in.
DEFAULT_HOME = PROJECT_ROOT / "lakehouse"
# Where `make build` generates demo events when SPARKIFY_EVENTS is unset (the Makefile's DEMO_EVENTS);
# used as the input whenever SPARKIFY_EVENTS is unset and the file exists, by `make` and plain `dbt` alike.
DEMO_EVENTS = Path("demo") / "events.json.gz"
# The raw files checked before a build, with their line counts (written by sparkify/raw_files.py).
RAW_FILES_NAME = "raw_files.jsonl"
SCHEMA = "sparkify"
FORMATS = ("auto", "delta", "parquet")
# The dbt targets of profiles/profiles.yml: Spark embedded in the process, or the cluster's Thrift Server.
TARGETS = ("local", "cluster")
MIN_JAVA = 17
# Where `python -m sparkify.delta_jars` (run by `make venv`) puts the Delta jars; gitignored.
DELTA_JAR_CACHE = PROJECT_ROOT / ".cache" / "delta-jars"
# The Delta Lake release whose jars match pyspark 4.2. The delta-spark pip package is 4.4.1, but
# Maven Central has no 4.4.1 jars (io.delta:delta-spark_4.2_2.13 stops at 4.4.0, checked on
# repo.maven.apache.org) and pip 4.4.1 differs from 4.4.0 only in its version string.
DELTA_JAR_VERSION = "4.4.0"
# The class-data-sharing archive `make venv` builds (sparkify/jvm_archive.py); the driver maps it when present.
JVM_ARCHIVE_DIR = PROJECT_ROOT / ".cache" / "jvm-archive"
JVM_ARCHIVE_MANIFEST = "manifest.json"
# Extra JVM options of the embedded driver; unset, the archive's when it was built for this `java`.
DRIVER_JAVA_OPTIONS = "SPARKIFY_DRIVER_JAVA_OPTIONS"
# The cluster target's metastore database driver, fetched with Maven by `make cluster-up` (sparkify/cluster.py).
METASTORE_JDBC = "org.postgresql:postgresql:42.7.14"
METASTORE_JDBC_CACHE = PROJECT_ROOT / ".cache" / "postgresql-jdbc"
# Where the cluster target's services listen, and the shape of the local cluster `make cluster-up` starts
# (README, "Running on a cluster"). PostgreSQL's port is 5433, not its usual 5432, so that the metastore
# never meets a PostgreSQL the machine already runs.
CLUSTER_DEFAULTS = {
    "SPARKIFY_THRIFT_HOST": "127.0.0.1",
    "SPARKIFY_THRIFT_PORT": "10000",
    "SPARKIFY_MASTER_HOST": "127.0.0.1",
    "SPARKIFY_MASTER_PORT": "7077",
    "SPARKIFY_MASTER_UI_PORT": "8080",
    "SPARKIFY_WORKER_UI_PORT": "8081",
    "SPARKIFY_METASTORE_PORT": "5433",
    "SPARKIFY_METASTORE_USER": "sparkify",
    "SPARKIFY_METASTORE_PASSWORD": "",
    "SPARKIFY_WORKERS": "2",
    "SPARKIFY_EXECUTOR_MEMORY": "3g",
}


class SettingsError(RuntimeError):
    """A configuration problem the user can fix; the message says how."""


@dataclass(frozen=True)
class TableFormat:
    """The table format chosen for this run and the reason, printed once per command."""

    name: str
    reason: str
    jars: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cluster:
    """The cluster target: where its Thrift Server, master and metastore are, and the local cluster's shape."""

    thrift_host: str
    thrift_port: int
    master_host: str
    master_port: int
    master_ui_port: int
    worker_ui_port: int  # the first worker's; worker n listens on worker_ui_port + n - 1
    metastore_port: int  # the local cluster's PostgreSQL
    metastore_url: str
    metastore_user: str
    metastore_password: str
    workers: int
    executor_memory: str  # of each executor, and so of each local worker

    @property
    def master_url(self) -> str:
        return f"spark://{self.master_host}:{self.master_port}"

    @property
    def master_ui(self) -> str:
        return f"http://{self.master_host}:{self.master_ui_port}/"

    def env(self) -> dict[str, str]:
        """The variables `profiles/profiles.yml` reads for the cluster target."""
        return {
            "SPARKIFY_THRIFT_HOST": self.thrift_host,
            "SPARKIFY_THRIFT_PORT": str(self.thrift_port),
            "SPARKIFY_MASTER_HOST": self.master_host,
            "SPARKIFY_MASTER_PORT": str(self.master_port),
            "SPARKIFY_METASTORE_URL": self.metastore_url,
            "SPARKIFY_METASTORE_USER": self.metastore_user,
            "SPARKIFY_METASTORE_PASSWORD": self.metastore_password,
            "SPARKIFY_EXECUTOR_MEMORY": self.executor_memory,
        }


def metastore_jdbc_jars() -> list[str]:
    """The JDBC driver jars `make cluster-up` fetched (none before that)."""
    return sorted(str(p) for p in METASTORE_JDBC_CACHE.glob("*.jar"))


def load_cluster(env: os._Environ | dict) -> Cluster:
    """The SPARKIFY_* variables of the cluster target, with CLUSTER_DEFAULTS for the unset ones."""
    value = {name: env.get(name) or default for name, default in CLUSTER_DEFAULTS.items()}
    value["SPARKIFY_METASTORE_PASSWORD"] = env.get("SPARKIFY_METASTORE_PASSWORD", "")

    def number(name: str, low: int = 1, high: int = 65535) -> int:
        try:
            n = int(value[name])
        except ValueError:
            n = -1
        if not low <= n <= high:
            raise SettingsError(f"{name}={value[name]!r} is not a number from {low} to {high}")
        return n

    metastore_port = number("SPARKIFY_METASTORE_PORT")
    return Cluster(
        thrift_host=value["SPARKIFY_THRIFT_HOST"],
        thrift_port=number("SPARKIFY_THRIFT_PORT"),
        master_host=value["SPARKIFY_MASTER_HOST"],
        master_port=number("SPARKIFY_MASTER_PORT"),
        master_ui_port=number("SPARKIFY_MASTER_UI_PORT"),
        worker_ui_port=number("SPARKIFY_WORKER_UI_PORT"),
        metastore_port=metastore_port,
        metastore_url=env.get("SPARKIFY_METASTORE_URL")
        or f"jdbc:postgresql://{value['SPARKIFY_MASTER_HOST']}:{metastore_port}/metastore",
        metastore_user=value["SPARKIFY_METASTORE_USER"],
        metastore_password=value["SPARKIFY_METASTORE_PASSWORD"],
        workers=number("SPARKIFY_WORKERS", high=64),
        executor_memory=value["SPARKIFY_EXECUTOR_MEMORY"],
    )


@dataclass(frozen=True)
class Settings:
    home: Path
    events: str | None
    table_format: TableFormat
    driver_memory: str
    shuffle_partitions: str
    target: str
    cluster: Cluster
    driver_java_options: str = ""

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse"

    def table_path(self, table: str) -> Path:
        return self.warehouse / f"{SCHEMA}.db" / table

    def profile_env(self) -> dict[str, str]:
        """Environment variables that `profiles/profiles.yml` and `dbt_project.yml` read."""
        return {
            "SPARKIFY_HOME": str(self.home),
            "SPARKIFY_TABLE_FORMAT": self.table_format.name,
            "SPARKIFY_SPARK_JARS": ",".join(self.table_format.jars),
            "SPARKIFY_DRIVER_MEMORY": self.driver_memory,
            "SPARKIFY_SHUFFLE_PARTITIONS": self.shuffle_partitions,
            "SPARKIFY_TARGET": self.target,
            DRIVER_JAVA_OPTIONS: self.driver_java_options,
            "DBT_TARGET_PATH": str(self.home / "dbt" / "target"),
            "DBT_LOG_PATH": str(self.home / "logs"),
            "DBT_PROFILES_DIR": str(PROFILES_DIR),
            "SPARKIFY_RAW_FILES": str(self.home / RAW_FILES_NAME),
            **self.cluster.env(),
            # The cluster's drivers need the metastore's JDBC driver and the table format's jars on their own
            # class path: the Thrift Server finds data sources (`using delta`) only there, not in spark.jars.
            "SPARKIFY_DRIVER_CLASSPATH": ":".join([*metastore_jdbc_jars(), *self.table_format.jars]),
            **({"SPARKIFY_EVENTS_GLOB": self.events} if self.events else {}),
        }


def load(env: os._Environ | dict | None = None) -> Settings:
    """Read the SPARKIFY_* variables; relative paths are taken from the current directory."""
    env = os.environ if env is None else env
    home = Path(env.get("SPARKIFY_HOME") or DEFAULT_HOME).expanduser().resolve()
    events = env.get("SPARKIFY_EVENTS") or None
    if events is None and (home / DEMO_EVENTS).is_file():
        events = str(home / DEMO_EVENTS)
    target = env.get("SPARKIFY_TARGET") or "local"
    if target not in TARGETS:
        raise SettingsError(f"SPARKIFY_TARGET={target!r} is not one of {', '.join(TARGETS)}")
    return Settings(
        home=home,
        events=events_glob(events) if events else None,
        table_format=resolve_table_format(
            env.get("SPARKIFY_TABLE_FORMAT") or "auto", env.get("SPARKIFY_DELTA_JARS") or None
        ),
        driver_memory=env.get("SPARKIFY_DRIVER_MEMORY") or "4g",
        shuffle_partitions=env.get("SPARKIFY_SHUFFLE_PARTITIONS") or "4",
        target=target,
        cluster=load_cluster(env),
        driver_java_options=env[DRIVER_JAVA_OPTIONS] if DRIVER_JAVA_OPTIONS in env else archive_options(),
    )


def archive_options(directory: Path = JVM_ARCHIVE_DIR) -> str:
    """The driver's options to map the class archive, if set-up built one for the `java` in use. The JVM
    checks the archive against its jars itself (`-Xshare:auto`): a mismatch only loads classes as usual."""
    try:
        manifest = json.loads((directory / JVM_ARCHIVE_MANIFEST).read_text())
    except (OSError, ValueError):
        return ""
    archive = directory / str(manifest.get("archive"))
    if not manifest.get("archive") or manifest.get("java") != java_binary() or not archive.is_file():
        return ""
    return f"-XX:SharedArchiveFile={archive} -Xshare:auto"


def events_glob(path: str) -> str:
    """Check that SPARKIFY_EVENTS names readable JSON-lines data and return a Spark path glob."""
    from sparkify.raw_files import list_files, spark_glob

    expanded = os.path.expanduser(path)
    if os.path.isdir(expanded):
        pattern = spark_glob(expanded)
    else:
        pattern = os.path.abspath(expanded)
    files = list_files(pattern)
    if not files:
        if os.path.isdir(expanded):
            raise SettingsError(
                f"SPARKIFY_EVENTS={path}: the directory holds no .json or .json.gz files"
            )
        raise SettingsError(f"SPARKIFY_EVENTS={path}: no such file, directory or glob match")
    if all(os.path.getsize(f) == 0 for f in files):
        raise SettingsError(f"SPARKIFY_EVENTS={path}: the input is empty ({len(files)} empty file(s))")
    return pattern


def resolve_table_format(requested: str, jar_dir: str | None) -> TableFormat:
    """Pick Delta or Parquet without starting a JVM: Delta needs its jars on disk (set-up fetches them)."""
    requested = requested.lower()
    if requested not in FORMATS:
        raise SettingsError(
            f"SPARKIFY_TABLE_FORMAT={requested!r} is not one of {', '.join(FORMATS)}"
        )
    if requested == "parquet":
        return TableFormat("parquet", "SPARKIFY_TABLE_FORMAT=parquet")
    jars, where = local_delta_jars(jar_dir)
    if jars:
        return TableFormat("delta", f"{requested}: Delta Lake jars in {where}", jars=jars)
    if jar_dir:
        raise SettingsError(
            f"SPARKIFY_DELTA_JARS={jar_dir}: no delta-spark*.jar there. Put the jars of "
            f"{delta_maven_coordinates()} in it, unset it to use the jars `make venv` fetches, or set "
            "SPARKIFY_TABLE_FORMAT=parquet"
        )
    if requested == "delta":
        raise SettingsError(
            f"SPARKIFY_TABLE_FORMAT=delta but the Delta Lake jars ({delta_maven_coordinates()}) are not "
            f"in {DELTA_JAR_CACHE}: run `make venv` (or `python -m sparkify.delta_jars`) to fetch them, "
            "set SPARKIFY_DELTA_JARS to a directory that holds them, or set SPARKIFY_TABLE_FORMAT=parquet"
        )
    return TableFormat(
        "parquet",
        f"auto: no Delta Lake jars in {DELTA_JAR_CACHE} or SPARKIFY_DELTA_JARS "
        "(`make venv` fetches them)",
    )


def delta_maven_coordinates() -> str:
    """The delta-spark artifact for the installed pyspark, named as delta-spark's pip helper names it."""
    from importlib.metadata import version

    spark = ".".join(version("pyspark").split(".")[:2])
    return f"io.delta:delta-spark_{spark}_2.13:{DELTA_JAR_VERSION}"


def local_delta_jars(jar_dir: str | None) -> tuple[tuple[str, ...], str]:
    """Every jar of SPARKIFY_DELTA_JARS, else of the project's jar cache, if it holds delta-spark."""
    directory = os.path.expanduser(jar_dir) if jar_dir else str(DELTA_JAR_CACHE)
    jars = sorted(glob.glob(os.path.join(directory, "*.jar")))
    if any("delta-spark" in os.path.basename(j) for j in jars):
        return tuple(jars), directory
    return (), ""


def java_binary() -> str | None:
    """The `java` Spark's launcher runs (JAVA_HOME first, then PATH), resolved; None if there is none."""
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    return os.path.realpath(java) if java and os.path.exists(java) else None


def check_java() -> str:
    """Fail early, with install instructions, when Java 17+ is missing."""
    java = java_binary()
    hint = (
        f"Spark needs Java {MIN_JAVA} or newer. Install it (Debian/Ubuntu: "
        "`sudo apt-get install openjdk-17-jre-headless`; macOS: `brew install openjdk@17`) "
        "and make sure `java` is on PATH or JAVA_HOME points to it."
    )
    if not java or not os.path.exists(java):
        raise SettingsError(f"Java not found. {hint}")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise SettingsError(f"Could not read the Java version from `{java} -version`. {hint}")
    major = int(match.group(1)) if match.group(1) != "1" else int(match.group(2) or 0)
    if major < MIN_JAVA:
        raise SettingsError(f"Found Java {major} at {java}. {hint}")
    return f"Java {major}"


def apply(settings: Settings) -> None:
    """Export the derived variables so dbt's profile and any child process see the same settings."""
    os.environ.update(settings.profile_env())
