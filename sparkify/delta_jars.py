"""Fetch the Delta Lake jars once, at set-up, into the project's jar cache: `python -m sparkify.delta_jars`.

Maven (`mvn dependency:copy-dependencies` on a generated one-dependency pom) resolves the jars that
match the pinned pyspark, and leaves out every artifact pyspark already ships, so the classpath holds
one copy of Hadoop, Parquet and Jackson: Spark's. Later runs read the cache and need no network.
`make venv` (and so `make run` / `make test`) calls this; it is idempotent and offline once done.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable
from xml.sax.saxutils import escape

from sparkify import settings as cfg

log = logging.getLogger("sparkify")

MANIFEST = "manifest.json"
MAVEN_CENTRAL = "https://repo.maven.apache.org/maven2"
FETCH_TIMEOUT_S = 900

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sparkify</groupId>
  <artifactId>delta-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <repositories>
    <repository><id>central</id><url>{repo}</url></repository>
  </repositories>
  <pluginRepositories>
    <pluginRepository><id>central</id><url>{repo}</url></pluginRepository>
  </pluginRepositories>
  <dependencies>
    <dependency>
      <groupId>{group}</groupId>
      <artifactId>{artifact}</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""


class FetchError(cfg.SettingsError):
    """The jars could not be fetched; the message says which coordinates and what to do instead."""


def pyspark_jar_artifacts() -> list[str]:
    """Artifact ids of the jars pyspark ships (`hadoop-client-api-3.5.0.jar` -> `hadoop-client-api`)."""
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    return sorted({re.sub(r"-\d[^-]*(-\d+)?\.jar$", "", p.name) for p in jars.glob("*.jar")})


def manifest_matches(directory: Path, coordinates: str) -> bool:
    """True when `directory` holds a complete fetch of exactly these coordinates."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("coordinates") == coordinates and all(
        (directory / name).is_file() for name in manifest.get("jars", [])
    ) and bool(manifest.get("jars"))


def check_pip_matches(coordinates: str) -> None:
    """The jars and the delta-spark pip package must be the same Delta release line (major.minor)."""
    from importlib.metadata import version

    pip, jar = version("delta-spark"), coordinates.rsplit(":", 1)[1]
    if pip.split(".")[:2] != jar.split(".")[:2]:
        raise FetchError(
            f"delta-spark (pip) is {pip} but the Delta jars are pinned at {jar} "
            "(sparkify/settings.py, DELTA_JAR_VERSION): pin the same major.minor in both")


def failure_message(coordinates: str, reason: str) -> str:
    return (
        f"Could not fetch the Delta Lake jars {coordinates} (and their dependencies) from Maven: "
        f"{reason}\n"
        f"  - to supply them yourself, put delta-spark_*.jar, delta-storage-*.jar and their "
        f"dependencies in a directory and set SPARKIFY_DELTA_JARS=/that/directory;\n"
        f"  - or build without Delta: SPARKIFY_TABLE_FORMAT=parquet (see README, 'Delta Lake or Parquet')."
    )


def fetch(directory: Path = cfg.DELTA_JAR_CACHE, coordinates: str | None = None,
          repository: str | None = None) -> list[Path]:
    """Resolve the Delta jars with Maven into `directory` (replaced only when the fetch is complete)."""
    coordinates = coordinates or cfg.delta_maven_coordinates()
    check_pip_matches(coordinates)
    return fetch_maven(directory, coordinates, repository)


def fetch_maven(directory: Path, coordinates: str, repository: str | None = None,
                explain: Callable[[str, str], str] = failure_message) -> list[Path]:
    """Resolve `coordinates` and their dependencies into `directory`, once (also the metastore's JDBC
    driver, for `make cluster-up`); `explain(coordinates, reason)` is the message when that fails."""
    if manifest_matches(directory, coordinates):
        os.utime(directory / MANIFEST)  # up to date for make
        return [directory / n for n in json.loads((directory / MANIFEST).read_text())["jars"]]
    mvn = shutil.which("mvn")
    if mvn is None:
        raise FetchError(explain(
            coordinates, "Maven (`mvn`) is not installed (Debian/Ubuntu: `sudo apt-get install maven`; "
            "macOS: `brew install maven`)."))
    group, artifact, version = coordinates.split(":")
    repository = repository or os.environ.get("SPARKIFY_MAVEN_REPO") or MAVEN_CENTRAL
    directory.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".delta-jars-", dir=directory.parent) as work:
        work_dir = Path(work)
        (work_dir / "pom.xml").write_text(POM.format(
            repo=escape(repository), group=escape(group), artifact=escape(artifact), version=escape(version)))
        out = work_dir / "jars"
        command = [
            mvn, "-B", "-q", "-f", str(work_dir / "pom.xml"), "dependency:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={out}",
            # Spark provides these (newer) itself: one copy of each class on the classpath.
            "-DexcludeArtifactIds=" + ",".join(pyspark_jar_artifacts()),
        ]
        if os.environ.get("SPARKIFY_MAVEN_LOCAL_REPO"):
            command.append(f"-Dmaven.repo.local={os.environ['SPARKIFY_MAVEN_LOCAL_REPO']}")
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise FetchError(explain(
                coordinates, f"Maven did not finish within {FETCH_TIMEOUT_S}s ({repository})")) from None
        jars = sorted(out.glob("*.jar")) if out.is_dir() else []
        if result.returncode != 0 or not any(j.name.startswith(artifact) for j in jars):
            errors = [line.strip() for line in (result.stdout + result.stderr).splitlines()
                      if "[ERROR]" in line and line.strip() != "[ERROR]"]
            detail = errors[0].replace("[ERROR] ", "") if errors else f"mvn exited with {result.returncode}"
            raise FetchError(explain(coordinates, f"{detail} (repository {repository})"))
        (out / MANIFEST).write_text(json.dumps(
            {"coordinates": coordinates, "repository": repository, "jars": [j.name for j in jars]}, indent=1))
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(out, directory)
    return [directory / j.name for j in jars]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sparkify.delta_jars",
        description="Fetch the Delta Lake jars matching the pinned pyspark into the project's jar cache "
                    f"({cfg.DELTA_JAR_CACHE}). Skipped when SPARKIFY_TABLE_FORMAT=parquet or when "
                    "SPARKIFY_DELTA_JARS names a directory of jars.")
    parser.add_argument("--dir", type=Path, default=cfg.DELTA_JAR_CACHE, help="where the jars go")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if (os.environ.get("SPARKIFY_TABLE_FORMAT") or "").lower() == "parquet":
        log.info("sparkify: SPARKIFY_TABLE_FORMAT=parquet, not fetching the Delta Lake jars")
        return 0
    if os.environ.get("SPARKIFY_DELTA_JARS"):
        try:
            chosen = cfg.resolve_table_format("delta", os.environ["SPARKIFY_DELTA_JARS"])
        except cfg.SettingsError as error:
            log.error("sparkify: %s", error)
            return 2
        log.info("sparkify: using the Delta Lake jars in SPARKIFY_DELTA_JARS (%d jars)", len(chosen.jars))
        return 0
    try:
        jars = fetch(args.dir)
    except cfg.SettingsError as error:
        log.error("sparkify: %s", error)
        return 2
    log.info("sparkify: Delta Lake jars %s ready in %s (%d jars)",
             cfg.delta_maven_coordinates(), args.dir, len(jars))
    return 0


if __name__ == "__main__":
    sys.exit(main())
