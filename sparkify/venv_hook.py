"""What every Python of the project's venv runs at start-up, through one `.pth` file that `make venv` installs.

- It imports `sparkify.arrow_exit`, so that reading a Delta table never aborts the process at exit.
- When the process is dbt itself (`dbt build`, `.venv/bin/dbt run -s user_features+`, `python -m dbt`),
  it prepares that process exactly as `python -m sparkify.dbt` does (sparkify/dbt.py, `prepare_process`):
  the SPARKIFY_* settings resolved and exported (profile, table format, events path, target path), the Java
  check, the table-format guard and, for commands that start Spark, the lakehouse lock held until the
  process ends. A plain `dbt` command therefore acts on the same lakehouse, with the same settings and the
  same guards, as `make build`. When a check fails, the process stops before dbt starts, with exit code 2
  and the message on stderr.

A `.pth` file is the one hook that holds for every way of starting dbt from this venv, activated or not, and
it runs before dbt reads its profile. It does nothing for any other program.
"""
from __future__ import annotations

import os
import sys
import sysconfig

import sparkify.arrow_exit  # noqa: F401  (registers its exit handler)

PTH_NAME = "sparkify-venv.pth"
# Written by earlier versions of `make venv`; this file now does its job.
OLD_PTH_NAMES = ("sparkify-arrow-exit.pth",)


def dbt_arguments(argv: list[str]) -> list[str] | None:
    """The dbt arguments when `argv` (the interpreter's original command line) starts dbt, else None."""
    if argv and os.path.basename(argv[0]) == "dbt":
        return argv[1:]
    rest = argv[1:]
    while rest:
        arg, rest = rest[0], rest[1:]
        if arg == "-m":
            return rest[1:] if rest and rest[0] in ("dbt", "dbt.cli.main") else None
        if arg in ("-X", "-W"):  # the interpreter's options that take a value
            rest = rest[1:]
        elif not arg.startswith("-"):  # a script: `python .venv/bin/dbt build`, or any other
            return rest if os.path.basename(arg) == "dbt" else None
        elif arg == "-c":
            return None
    return None


_started = False


def on_start() -> None:
    global _started
    if _started:  # `python -v` shows site processing this venv's site-packages twice, so the .pth runs twice
        return
    _started = True
    args = dbt_arguments(list(getattr(sys, "orig_argv", sys.argv)))
    if args is None:
        return
    from sparkify.dbt import prepare_process

    code = prepare_process(args)
    if code:
        sys.stderr.flush()
        os._exit(code)


def install() -> str:
    """Write the .pth file that imports this module at every start of this Python; returns its path."""
    site = sysconfig.get_paths()["purelib"]
    for old in OLD_PTH_NAMES:
        if os.path.exists(os.path.join(site, old)):
            os.remove(os.path.join(site, old))
    path = os.path.join(site, PTH_NAME)
    with open(path, "w") as f:
        f.write("import sparkify.venv_hook; sparkify.venv_hook.on_start()\n")
    return path

