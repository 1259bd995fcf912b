"""A process that reads a Delta table with deltalake exits cleanly (see sparkify/arrow_exit.py)."""
import subprocess
import sys

import pyarrow as pa
from deltalake import write_deltalake

READ = "import sys; from deltalake import DeltaTable; print(DeltaTable(sys.argv[1]).to_pyarrow_table().num_rows)"


def test_reading_a_delta_table_never_aborts_the_process_at_exit(tmp_path):
    rows = list(range(5000))
    write_deltalake(str(tmp_path / "t"), pa.table({"x": rows}))
    # Without the exit handler about 6 in 10 of these runs abort with status 134 after printing the count.
    runs = [subprocess.run([sys.executable, "-c", READ, str(tmp_path / "t")], capture_output=True, text=True)
            for _ in range(12)]
    assert [(r.returncode, r.stdout.strip(), r.stderr.strip()) for r in runs] == [(0, str(len(rows)), "")] * 12
