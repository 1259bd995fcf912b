"""The class-data-sharing archive `make venv` builds (sparkify/jvm_archive.py) is the one the driver maps."""

from __future__ import annotations

import json
import subprocess

import pytest

from sparkify import settings as cfg

pytestmark = pytest.mark.spark


def test_the_session_driver_starts_from_the_archive_built_for_its_class_path(spark):
    bean = spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    arguments = list(bean.getInputArguments())
    manifest = json.loads((cfg.JVM_ARCHIVE_DIR / cfg.JVM_ARCHIVE_MANIFEST).read_text())  # set-up wrote it
    java = cfg.java_binary()
    if manifest["archive"] is None or manifest["java"] != java:  # this JVM could not dump one, or a new java
        assert not any(a.startswith("-XX:SharedArchiveFile") for a in arguments)
        return
    archive = cfg.JVM_ARCHIVE_DIR / manifest["archive"]
    assert f"-XX:SharedArchiveFile={archive}" in arguments
    # -Xshare:on refuses to start unless the archive maps for exactly this class path and JVM.
    modules = [a for a in arguments if a.startswith("--add-modules")]
    check = subprocess.run([java, "-Xshare:on", f"-XX:SharedArchiveFile={archive}", *modules,
                            "-cp", bean.getClassPath(), "-version"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr[-2000:]
    assert "sharing" in check.stderr
