"""The one exception type that a CLI turns into a one-line message and exit code 2."""

from __future__ import annotations


class UsageError(RuntimeError):
    """A problem the user can fix (missing table, unknown model, too few positives...)."""

    exit_code = 2
