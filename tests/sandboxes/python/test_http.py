"""requests and urllib.request in Python functions, against local targets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from fnbox.sandboxes.base import FunctionSource, Limits
from fnbox.sandboxes.errors import FunctionError, TimeoutExceeded
from fnbox.sandboxes.network import EgressSettings
from fnbox.sandboxes.python.sandbox import compile_workspace
from tests.targets import http_target

LIMITS = Limits(timeout=5.0, memory=64 << 20)
LOCAL = EgressSettings(policy="127.0.0.1").build()


def echo(handler):
    seen = {
        "method": handler.command,
        "path": handler.path,
        "body": handler.body.decode(),
        "headers": {k.lower(): v for k, v in handler.headers.items()},
    }
    return 200, {"Content-Type": "application/json"}, json.dumps(seen).encode()


ROUTES = {
    "/echo": echo,
    "/missing": lambda h: (404, {"Content-Type": "text/plain"}, b"nothing here"),
    "/to-echo": lambda h: (302, {"Location": "/echo"}, b""),
    "/slow": lambda h: (time.sleep(0.2), (200, {}, b"late"))[1],
    "/text": lambda h: (200, {"Content-Type": "text/plain; charset=utf-8"}, "héllo\nworld".encode()),
}


@pytest.fixture(scope="module")
def base():
    with http_target(ROUTES) as url:
        yield url


def run(code: str, base: str, *, egress=LOCAL, limits=LIMITS, parameters=None):
    sandbox = compile_workspace([FunctionSource("f", code)])
    parameters = {"base": base, **(parameters or {})}
    return asyncio.run(sandbox.run("f", {**parameters}, limits, outbound=egress))


def test_requests_get_with_params_headers_and_json(base):
    outcome = run(
        "import requests\n"
        "r = requests.get(params['base'] + '/echo', params={'q': 'a b'}, headers={'X-Key': 'k'}, timeout=5)\n"
        "r.raise_for_status()\n"
        "seen = r.json()\n"
        "return [r.status_code, r.ok, seen['path'], seen['headers']['x-key'], r.headers['content-type']]",
        base,
    )
    assert outcome.result == [200, True, "/echo?q=a+b", "k", "application/json"]
    assert outcome.logs[0]["level"] == "debug"
    assert outcome.logs[0]["message"].startswith(f"GET {base}/echo?q=a+b -> 200 in ")


def test_requests_post_put_patch_delete_with_json_and_data(base):
    outcome = run(
        "import requests\n"
        "u = params['base'] + '/echo'\n"
        "a = requests.post(u, json={'x': 1}).json()\n"
        "b = requests.put(u, data={'y': '2'}).json()\n"
        "c = requests.patch(u, data='raw').json()\n"
        "d = requests.delete(u).json()\n"
        "e = requests.request('POST', u, data=b'bytes').json()\n"
        "return [[a['method'], a['body'], a['headers']['content-type']], [b['method'], b['body']],"
        " c['body'], d['method'], e['body']]",
        base,
    )
    assert outcome.result == [
        ["POST", '{"x": 1}', "application/json"],
        ["PUT", "y=2"],
        "raw",
        "DELETE",
        "bytes",
    ]
    assert len(outcome.logs) == 5


def test_requests_errors_are_requests_exceptions(base):
    outcome = run(
        "import requests\n"
        "out = []\n"
        "try:\n"
        "    requests.get(params['base'] + '/missing').raise_for_status()\n"
        "except requests.exceptions.HTTPError as e:\n"
        "    out.append([e.response.status_code, e.response.text])\n"
        "try:\n"
        "    requests.get('http://10.0.0.1/')\n"
        "except requests.ConnectionError as e:\n"
        "    out.append('refused' if 'egress' in str(e) else str(e))\n"
        "try:\n"
        "    requests.get(params['base'] + '/slow', timeout=0.05)\n"
        "except requests.exceptions.Timeout:\n"
        "    out.append('timeout')\n"
        "try:\n"
        "    requests.get('example.com')\n"
        "except requests.exceptions.MissingSchema as e:\n"
        "    out.append('MissingSchema')\n"
        "try:\n"
        "    requests.get(params['base'] + '/text').json()\n"
        "except ValueError:\n"
        "    out.append('not json')\n"
        "return out",
        base,
    )
    assert outcome.result == [[404, "nothing here"], "refused", "timeout", "MissingSchema", "not json"]


def test_a_session_sends_its_headers_and_redirects_are_followed(base):
    outcome = run(
        "import requests\n"
        "with requests.Session() as s:\n"
        "    s.headers.update({'Authorization': 'Bearer t'})\n"
        "    r = s.get(params['base'] + '/to-echo')\n"
        "    m = s.get(params['base'] + '/to-echo', allow_redirects=False)\n"
        "return [r.json()['headers']['authorization'], r.url.endswith('/echo'), m.status_code, r.text[:1]]",
        base,
    )
    assert outcome.result == ["Bearer t", True, 302, "{"]


def test_urllib_request_urlopen_with_a_request(base):
    outcome = run(
        "import json\n"
        "import urllib.request, urllib.error\n"
        "req = urllib.request.Request(params['base'] + '/echo', data=b'{}', headers={'Content-Type': 'application/json'},"
        " method='PUT')\n"
        "with urllib.request.urlopen(req, timeout=5) as resp:\n"
        "    seen = json.loads(resp.read().decode())\n"
        "    status = resp.status\n"
        "text = urllib.request.urlopen(params['base'] + '/text').read().decode('utf-8')\n"
        "try:\n"
        "    urllib.request.urlopen(params['base'] + '/missing')\n"
        "except urllib.error.HTTPError as e:\n"
        "    missing = [e.code, e.read().decode()]\n"
        "return [status, seen['method'], seen['headers']['content-type'], text, missing]",
        base,
    )
    assert outcome.result == [200, "PUT", "application/json", "héllo\nworld", [404, "nothing here"]]


def test_the_policy_is_the_runs(base):
    with pytest.raises(FunctionError, match="not a public address"):
        run(
            "import requests\nreturn requests.get(params['base'] + '/echo').text", base, egress=EgressSettings().build()
        )
    narrowed = LOCAL.for_workspace(["api.example.com"])
    with pytest.raises(FunctionError, match="allow-list"):
        run("import requests\nreturn requests.get(params['base'] + '/echo').text", base, egress=narrowed)


def test_time_spent_waiting_counts_against_the_run_timeout(base):
    short = Limits(timeout=0.1, memory=64 << 20)
    started = time.perf_counter()
    with pytest.raises(TimeoutExceeded):
        run(
            "import requests\ntry:\n    requests.get(params['base'] + '/slow')\nexcept Exception:\n    pass\nreturn 1",
            base,
            limits=short,
        )
    assert time.perf_counter() - started < 1.0


def test_the_request_cap_holds_per_run(base):
    egress = EgressSettings(policy="127.0.0.1", max_requests=2).build()
    code = "import requests\nfor i in range(3):\n    requests.get(params['base'] + '/echo')"
    with pytest.raises(FunctionError, match="at most 2 requests"):
        run(code, base, egress=egress)
    run(
        "import requests\nrequests.get(params['base'] + '/echo')\nrequests.get(params['base'] + '/echo')",
        base,
        egress=egress,
    )


def test_runs_of_one_sandbox_overlap_while_they_wait_each_with_its_own_env_and_logs():
    lock = threading.Lock()
    seen = {"now": 0, "most": 0}

    def held(handler):
        with lock:
            seen["now"] += 1
            seen["most"] = max(seen["most"], seen["now"])
        time.sleep(0.1)
        with lock:
            seen["now"] -= 1
        return 200, {}, b"late"

    code = (
        "import requests\nlog.info('start', env['who'])\nr = requests.get(params['base'] + '/held')\n"
        "log.info('end', env['who'])\nreturn [env['who'], r.text]"
    )
    sandbox = compile_workspace([FunctionSource("f", code)])
    with http_target({"/held": held}) as base:

        async def main():
            runs = [sandbox.run("f", {"base": base}, LIMITS, env={"who": str(i)}, outbound=LOCAL) for i in range(8)]
            return await asyncio.gather(*runs)

        outcomes = asyncio.run(main())
    for i, outcome in enumerate(outcomes):
        assert outcome.result == [str(i), "late"]
        messages = [entry["message"] for entry in outcome.logs]
        assert messages[0] == f"start {i}" and messages[-1] == f"end {i}" and "-> 200" in messages[1]
    assert seen["most"] >= 4  # the runs waited together, not in turn


def test_a_cancelled_run_stops_waiting_at_once(base):
    sandbox = compile_workspace(
        [FunctionSource("f", "import requests\nreturn requests.get(params['base'] + '/slow').text")]
    )

    async def main():
        task = asyncio.ensure_future(sandbox.run("f", {"base": base}, LIMITS, outbound=LOCAL))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await sandbox.run("f", {"base": base}, LIMITS, outbound=LOCAL)

    assert asyncio.run(main()).result == "late"
    assert not sandbox.broken
    assert threading.active_count() < 200
