from fnbox.executions.bounds import row_bytes, rows_bytes
from fnbox.executions.records import Execution, ExecutionStatus, to_row


class Name(str):
    """A text that is a subclass of str: counted as a text too."""


def test_rows_bytes_is_the_sum_of_each_rows_bytes():
    rows = [
        to_row(Execution(id="a", workspace="w", function="f", version="v1", language="python")),
        to_row(
            Execution(
                id="b", workspace=Name("wé"), function="f", version="v1", language="javascript",
                parameters={"x": [1, 2.5, None]}, status=ExecutionStatus.FAILED, result="r" * 100,
                error={"error": "E"}, owner="token", duration=1.5, started=1.0, finished=2.0,
            )
        ),
        (None, 1, 2.5, "text", b"bytes"),
    ]  # fmt: skip
    assert rows_bytes(rows) == sum(row_bytes(row) for row in rows)
    assert rows_bytes([]) == 0
