"""The benchmarks' measurement: each pipeline step gets the peak memory of the process tree while it ran."""

from __future__ import annotations

import sys
import textwrap

from sparkify.bench import measured

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
