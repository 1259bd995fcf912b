"""Check the raw files before dbt reads them: a corrupt or truncated `.json.gz` is set aside, not fatal.

Spark stops the whole bronze read at the first file it cannot decompress (FAILED_READ_FILE), so one
half-copied file would block every other new file. Before each build, `check` decompresses every file
it has not checked before (by path, size and modification time; the results are cached in
`$SPARKIFY_HOME/raw_files.jsonl`, one file per line, which the bronze model reads too) and counts its
lines, which the reconciliation test compares with the lines bronze recorded. A file that does not decompress to the end is
*rejected*: the bronze model does not read it, and the `rejected_files` model lists it with the reason
and the lines that could be read before the damage. Replacing or removing the file is the whole fix:
the next build checks the new version and loads it.

Only data files are considered: names ending in `.json` or `.json.gz`, not hidden (`.name`) and not
Spark's `_name`, so `events.json.swp`, `events.json.gz.partial` or `events.json.bak` are never read.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

from sparkify.settings import RAW_FILES_NAME

DATA_SUFFIXES = (".json", ".json.gz")
CHUNK = 1 << 16


@dataclass(frozen=True)
class RawFile:
    """One line of raw_files.jsonl; the dbt models read these fields (macros/raw_events.sql, raw_files_schema)."""

    path: str
    size: int
    mtime_ns: int
    lines: int  # lines read (all of them when the file is sound)
    reason: str | None  # None: sound; else why it is rejected


def is_data_file(path: str) -> bool:
    name = os.path.basename(path)
    return name.endswith(DATA_SUFFIXES) and not name.startswith((".", "_")) and os.path.isfile(path)


def spark_glob(directory: str) -> str:
    """The Spark (Hadoop) glob of a directory's data files."""
    return os.path.join(os.path.abspath(directory), "*.{" + ",".join(s[1:] for s in DATA_SUFFIXES) + "}")


def list_files(pattern: str) -> list[str]:
    """The data files a SPARKIFY_EVENTS glob (as settings.events_glob returns it) matches."""
    if pattern.endswith(".{json,json.gz}"):  # a directory: Python's glob has no {a,b}
        directory = os.path.dirname(pattern)
        return sorted(p for p in glob.glob(os.path.join(glob.escape(directory), "*")) if is_data_file(p))
    return sorted(p for p in glob.glob(pattern) if is_data_file(p))


def count_lines(path: str) -> tuple[int, str | None]:
    """(lines, None) for a sound file; (lines readable before the damage, why) for a corrupt gzip."""
    lines, last = 0, b"\n"
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            while chunk := handle.read1(CHUNK):  # as it decompresses, so a damaged end loses nothing before it
                lines += chunk.count(b"\n")
                last = chunk[-1:]
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as error:
        kind = "truncated" if isinstance(error, EOFError) else "corrupt"
        return lines, f"{kind} gzip file: {error} (after {lines} complete lines)"
    return lines + (last != b"\n"), None


def check(pattern: str, home: Path) -> list[RawFile]:
    """Every data file the pattern matches, checked (from the cache when unchanged since)."""
    cache_path = home / RAW_FILES_NAME
    try:
        cached = {f["path"]: RawFile(**f) for f in map(json.loads, cache_path.read_text().splitlines())}
    except (OSError, ValueError, TypeError):
        cached = {}
    files = []
    for path in list_files(pattern):
        stat = os.stat(path)
        known = cached.get(path)
        if known is not None and (known.size, known.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
            files.append(known)
            continue
        lines, reason = count_lines(path)
        files.append(RawFile(path, stat.st_size, stat.st_mtime_ns, lines, reason))
    home.mkdir(parents=True, exist_ok=True)
    tmp = cache_path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(asdict(f)) + "\n" for f in files))
    os.replace(tmp, cache_path)
    return files
