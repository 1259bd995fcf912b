"""A class-data-sharing archive of the classes the pipeline loads, built at set-up: `python -m sparkify.jvm_archive`.

A cold JVM spends seconds reading, parsing and verifying Spark's classes from its jars. The JVM can
instead map them from an archive (AppCDS, a standard HotSpot feature): a bare local SparkSession then
starts in 4.0 s instead of 6.4 s here, and `make pipeline` on es_small about 4 s less (2-6 s, two runs each). The archive holds the
classes that a short pipeline on generated data loads (`--record`, a run with `-XX:DumpLoadedClassList`),
dumped for the class path and the `java` that run used. `make venv` builds it once; it is rebuilt when
the venv is reinstalled. sparkify/settings.py adds it to the embedded driver's options only while it
matches the current `java`; the JVM itself checks the jars (`-Xshare:auto`) and loads them as before when
they changed, so a stale archive costs speed, never a failure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sparkify import dbt
from sparkify import settings as cfg

log = logging.getLogger("sparkify")

ARCHIVE = "spark.jsa"
RECORD_TIMEOUT_S = 900
# A complete pipeline on the demo data's size (the Makefile's DEMO_ARGS): every model family once, scores, customers.
RECORD_DATA = ["--users", "250", "--start", "2018-10-01", "--end", "2018-12-03", "--seed", "42", "--quiet"]


def record(classlist: Path, classpath_file: Path) -> int:
    """Run the pipeline in this process with the driver's class list recorded; write its class path."""
    from sparkify import pipeline
    from sparkify.spark import get_session

    code = pipeline.main(["--quick"])
    if code == 0:
        runtime = get_session(cfg.load(), pipeline.APP_NAME)._jvm.java.lang.management.ManagementFactory
        bean = runtime.getRuntimeMXBean()
        modules = [a for a in bean.getInputArguments() if a.startswith("--add-modules")]
        classpath_file.write_text(json.dumps({"classpath": bean.getClassPath(), "modules": list(modules)}))
    return code


def build(directory: Path = cfg.JVM_ARCHIVE_DIR) -> Path | None:
    """Record a pipeline run's classes and dump them; the archive, or None when this JVM cannot make one."""
    java = cfg.java_binary()
    if java is None:
        raise cfg.SettingsError("Java not found: install Java 17+ (`make venv` checks it)")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / cfg.JVM_ARCHIVE_MANIFEST).unlink(missing_ok=True)  # written last: a killed build leaves none
    with tempfile.TemporaryDirectory(prefix="sparkify-jvm-archive-") as tmp:
        work = Path(tmp)
        classlist, classpath_file, events = work / "classes.lst", work / "classpath.json", work / "events.json.gz"
        subprocess.run([sys.executable, "-m", "sparkify.generate", *RECORD_DATA, "--out", str(events)], check=True)
        env = {**os.environ, "SPARKIFY_HOME": str(work / "home"), "SPARKIFY_EVENTS": str(events),
               "SPARKIFY_TARGET": "local", cfg.DRIVER_JAVA_OPTIONS: f"-XX:DumpLoadedClassList={classlist}"}
        env.pop(dbt.PREPARED_VARIABLE, None)  # a fresh process: its own lock and checks
        log_path = directory / "record.log"
        with open(log_path, "w") as out:
            done = subprocess.run([sys.executable, "-m", "sparkify.jvm_archive", "--record", str(classlist),
                                   str(classpath_file)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=RECORD_TIMEOUT_S, cwd=cfg.PROJECT_ROOT)
        if done.returncode != 0 or not classpath_file.exists():
            raise cfg.SettingsError(f"the pipeline run that records the JVM's classes failed (exit "
                                    f"{done.returncode}); its output is in {log_path}")
        recorded = json.loads(classpath_file.read_text())
        archive, dumping = directory / ARCHIVE, work / ARCHIVE
        dump = [java, "-Xshare:dump", f"-XX:SharedClassListFile={classlist}", f"-XX:SharedArchiveFile={dumping}",
                *recorded["modules"], "-cp", recorded["classpath"]]
        # -Xshare:on refuses to start unless the archive maps for this class path: the proof it is usable.
        check = [java, "-Xshare:on", f"-XX:SharedArchiveFile={dumping}", *recorded["modules"],
                 "-cp", recorded["classpath"], "-version"]
        failed = None
        for command in (dump, check):
            run = subprocess.run(command, capture_output=True, text=True)
            if run.returncode != 0:
                failed = run
                break
        usable = failed is None
        archive.unlink(missing_ok=True)
        if usable:
            shutil.move(dumping, archive)
        else:
            log.warning("sparkify: %s cannot make a class-data-sharing archive (%s); Spark starts without one",
                        java, failed.stderr.strip().splitlines()[-1:])
        manifest = {"java": java, "archive": ARCHIVE if usable else None, "classes": sum(1 for _ in open(classlist))}
        (directory / cfg.JVM_ARCHIVE_MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return archive if usable else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparkify.jvm_archive", description=__doc__.split("\n")[0])
    parser.add_argument("--record", nargs=2, metavar=("CLASSLIST", "CLASSPATH_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.record:
        return record(Path(args.record[0]), Path(args.record[1]))
    try:
        archive = build()
    except (cfg.SettingsError, subprocess.SubprocessError) as error:
        print(f"sparkify: {error}", file=sys.stderr)
        return 1
    if archive:
        print(f"sparkify: JVM class archive {archive} ({archive.stat().st_size // 2**20} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
