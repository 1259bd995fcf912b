"""Let Arrow's thread pools go idle before Python shuts down, so reading a Delta table never aborts at exit.

`deltalake` reads a table through a Python file system, so Arrow's worker threads hold Python buffers.
A worker can still be releasing them (`arrow::py::PyBuffer::~PyBuffer`) when the main thread returns
and the interpreter starts to finalize. On Python < 3.14 a thread that asks for the GIL during
finalization is ended with `pthread_exit`, which unwinds through C++ and aborts the whole process:
"terminate called without an active exception", exit status 134, after the data was read correctly.
Measured here: 18 of 30 runs of `python -c "DeltaTable(p).to_pyarrow_table()"` ended that way, with
every deltalake from 0.25 to 1.6.6 and pyarrow 21 to 26 (apache/arrow#49942 guards the destructor
with `Py_IsInitialized`, which is still true at that point).

`make venv` installs a `.pth` file (sparkify/venv_hook.py) that imports this module in every Python of the
project's venv.
Its exit handler runs before finalization: if pyarrow was imported, it waits, with the GIL released,
until Arrow's CPU and I/O pools are idle. With it, 0 of 40 runs aborted. It does nothing when pyarrow
was never imported, and nothing if this Arrow build lacks the symbols it looks up.
"""
from __future__ import annotations

import atexit
import ctypes
import glob
import os
import sys

# arrow::internal::GetCpuThreadPool(), arrow::io::internal::GetIOThreadPool(), ThreadPool::WaitForIdle()
POOLS = ("_ZN5arrow8internal16GetCpuThreadPoolEv", "_ZN5arrow2io8internal15GetIOThreadPoolEv")
WAIT_FOR_IDLE = "_ZN5arrow8internal10ThreadPool11WaitForIdleEv"


def wait_for_arrow_pools() -> bool:
    """Block, without the GIL, until Arrow's worker threads have no task. False if there is nothing to do."""
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is None:
        return False
    libraries = glob.glob(os.path.join(os.path.dirname(pyarrow.__file__), "libarrow.so.*"))
    try:
        arrow = ctypes.CDLL(min(libraries, key=len))  # the library pyarrow already loaded
        wait = arrow[WAIT_FOR_IDLE]
        pools = [arrow[name] for name in POOLS]
    except (ValueError, OSError, AttributeError):
        return False
    wait.argtypes = [ctypes.c_void_p]
    for pool in pools:
        pool.restype = ctypes.c_void_p
        wait(pool())  # a ctypes.CDLL call releases the GIL, so a worker waiting for it can finish
    return True


atexit.register(wait_for_arrow_pools)

