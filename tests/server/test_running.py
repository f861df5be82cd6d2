import pytest

from fnbox.server.responses import FastJSONResponse
from fnbox.server.running import RunAnswer

LOGS = [{"level": "info", "message": "hé", "time": 1795428000123}]


@pytest.mark.parametrize("execution_id", ["0123456789abcdef0123456789abcdef", None])
@pytest.mark.parametrize("result", ["Hello world", {"a": [1, 2.5, None]}, None, 10**20])
def test_a_run_answer_is_the_json_response_of_its_fields(result, execution_id):
    ours = RunAnswer(result, LOGS, 0.125, execution_id)
    general = FastJSONResponse(
        {"result": result, "logs": LOGS, "duration": 0.125},
        headers={"X-Execution-Id": execution_id} if execution_id else None,
    )
    assert (ours.status_code, ours.body, ours.raw_headers) == (general.status_code, general.body, general.raw_headers)
    assert ours.background is None and dict(ours.headers) == dict(general.headers)


def test_a_result_json_cannot_hold_is_refused_as_before():
    with pytest.raises(ValueError) as general:
        FastJSONResponse({"result": float("nan"), "logs": [], "duration": 1.0})
    with pytest.raises(ValueError) as ours:
        RunAnswer(float("nan"), [], 1.0, None)
    assert str(ours.value) == str(general.value)
