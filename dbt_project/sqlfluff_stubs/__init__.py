"""Stand-ins for the dbt runtime functions our macros call, so sqlfluff's jinja templater can
render the models without a Spark connection (see .sqlfluff). They never run inside dbt."""

execute = False


def env_var(name, default=""):
    return default or f"env_{name.lower()}"


class _Result:
    columns = [type("Column", (), {"values": staticmethod(lambda: [])})()]


def run_query(sql):
    return _Result()


class exceptions:  # noqa: N801 - mirrors dbt's `exceptions` namespace
    @staticmethod
    def raise_compiler_error(message):
        raise RuntimeError(message)


class flags:  # noqa: N801 - mirrors dbt's `flags`: linting renders like `dbt compile`
    WHICH = "compile"


def var(name, default=None):
    """The project's vars from dbt_project.yml, as dbt would give them (the feature registry)."""
    import pathlib

    import yaml

    path = pathlib.Path(__file__).resolve().parents[2] / "dbt_project.yml"
    return yaml.safe_load(path.read_text())["vars"].get(name, default)


# dbt's run_started_at: the start of this invocation (a datetime in UTC).
run_started_at = __import__("datetime").datetime(2018, 12, 1, tzinfo=__import__("datetime").timezone.utc)
