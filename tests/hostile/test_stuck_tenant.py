"""Python runs stuck in C code, repeated: after the first kill, only the attacker stalls."""

import pytest

pytestmark = pytest.mark.slow  # a real server, worker processes or a subprocess

STALLS = {
    "range-contains": "return 1.5 in range(10**18)",
    "range-count": "return range(10**18).count(0.5)",
    "nested-re": "import re\nreturn bool(re.match(r'(a+)+$', 'a' * 40 + 'b'))",
    "fraction-squaring": "from fractions import Fraction\nx = Fraction(3, 7)\nfor i in range(64):\n    x = x * x\nreturn 1",
}


@pytest.mark.parametrize("code", STALLS.values(), ids=STALLS.keys())
def test_a_repeated_stall_in_c_code_never_again_resets_the_neighbours(service, code):
    workspace = f"stuck-{abs(hash(code))}"
    document = {"functions": {"f": {"language": "python", "code": code}}}
    assert service.client.put(f"/v2/functions/{workspace}", json=document).status_code == 200
    first = service.client.post(f"/v2/functions/{workspace}/run/f", json={})
    assert first.json()["error"] in ("TimeoutExceeded", "MemoryLimitExceeded")
    assert {"logs", "duration"} <= first.json().keys()
    service.check_healthy()
    for _ in range(2):
        again = service.client.post(f"/v2/functions/{workspace}/run/f", json={})
        assert again.json()["error"] in ("TimeoutExceeded", "MemoryLimitExceeded")
        service.check_healthy(warm=True)  # the attacker runs on a worker of its own now
