import asyncio

import pytest
import yaml

from fnbox.sandboxes.errors import CompilationError, InvalidParameters, InvalidRequest, NotFound, TimeoutExceeded
from fnbox.workspaces import runtime as runtime_module
from fnbox.workspaces.document import parse_workspace
from fnbox.workspaces.runtime import Runtime, RuntimeOptions, make_pool
from tests.fakes import FakeFactory


def fake_runtime(path, **options):
    factory, runtime_options = FakeFactory(), RuntimeOptions(**options)
    pool = make_pool(runtime_options, factories={"javascript": factory, "python": factory})
    return Runtime(path, options=runtime_options, pool=pool), factory


def workspace(**functions):
    return {"functions": {name: {"code": code} for name, code in functions.items()}}


def test_put_then_run(tmp_path):
    runtime, _ = fake_runtime(tmp_path)

    async def scenario():
        stored = await runtime.put_workspace("w", workspace(hello="echo"))
        outcome = await runtime.run("w", "hello", {"name": "x"})
        return stored, outcome

    stored, outcome = asyncio.run(scenario())
    assert stored.document == workspace(hello="echo")
    assert outcome.result == {"name": "x"}


def test_the_sandbox_compiled_at_save_time_serves_the_first_run(tmp_path):
    runtime, factory = fake_runtime(tmp_path)

    async def scenario():
        await runtime.put_workspace("w", workspace(a="count"))
        await runtime.run("w", "a")

    asyncio.run(scenario())
    assert len(factory.built) == 1


def test_a_compile_error_is_refused_and_the_stored_version_keeps_serving(tmp_path):
    runtime, _ = fake_runtime(tmp_path)

    async def scenario():
        await runtime.put_workspace("w", workspace(a="first"))
        with pytest.raises(CompilationError) as caught:
            await runtime.put_workspace("w", workspace(a="second", b="syntax error"))
        assert caught.value.details == {"function": "b", "line": 1}
        return (await runtime.run("w", "a")).result

    assert asyncio.run(scenario()) == "first"
    assert runtime.store.load("w") == workspace(a="first")


def test_a_saved_version_takes_effect_on_the_next_run(tmp_path):
    runtime, _ = fake_runtime(tmp_path)

    async def scenario():
        await runtime.put_workspace("w", workspace(a="first"))
        before = (await runtime.run("w", "a")).result
        await runtime.put_workspace("w", workspace(a="second"))
        return before, (await runtime.run("w", "a")).result

    assert asyncio.run(scenario()) == ("first", "second")


def test_workspaces_survive_a_restart(tmp_path):
    asyncio.run(fake_runtime(tmp_path)[0].put_workspace("w", workspace(a="kept")))
    runtime, _ = fake_runtime(tmp_path)

    async def scenario():
        await runtime.start()
        try:
            return runtime.list_workspaces(), (await runtime.run("w", "a")).result
        finally:
            await runtime.close()

    assert asyncio.run(scenario()) == (["w"], "kept")


def test_an_invalid_stored_file_is_reported_and_skipped_at_start(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "workspace.yaml").write_text("functions: {f: {code: 3}}\n")
    (tmp_path / "torn").mkdir()
    (tmp_path / "torn" / "workspace.yaml").write_text("functions: [\n")
    asyncio.run(fake_runtime(tmp_path)[0].put_workspace("good", workspace(a="ok")))
    runtime, _ = fake_runtime(tmp_path)

    async def scenario():
        problems = await runtime.start()
        try:
            return problems, (await runtime.run("good", "a")).result
        finally:
            await runtime.close()

    problems, result = asyncio.run(scenario())
    assert result == "ok"
    assert len(problems) == 2 and any("broken" in p and "'code' must be a string" in p for p in problems)
    with pytest.raises(NotFound, match="cannot be loaded"):
        runtime.get_workspace("torn")


def test_recompiling_at_start_reports_each_function_that_no_longer_compiles(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "workspace.yaml").write_text(yaml.safe_dump(workspace(a="ok", b="syntax error")))
    runtime, _ = fake_runtime(tmp_path)

    async def scenario():
        problems = await runtime.start(recompile=True)
        try:
            with pytest.raises(CompilationError):
                await runtime.run("old", "b")
            return problems, (await runtime.run("old", "a")).result
        finally:
            await runtime.close()

    problems, result = asyncio.run(scenario())
    assert result == "ok"
    assert problems == ["workspace 'old': b: syntax error"]


def test_delete_then_not_found(tmp_path):
    runtime, factory = fake_runtime(tmp_path)

    async def scenario():
        await runtime.put_workspace("w", workspace(a="ok"))
        await runtime.delete_workspace("w")
        with pytest.raises(NotFound):
            await runtime.run("w", "a")
        with pytest.raises(NotFound):
            runtime.get_workspace("w")
        with pytest.raises(NotFound):
            await runtime.delete_workspace("w")

    asyncio.run(scenario())
    assert factory.built[0].closed
    assert runtime.list_workspaces() == []


def test_unknown_function_and_bad_parameters(tmp_path):
    runtime, _ = fake_runtime(tmp_path)
    document = {"functions": {"f": {"code": "echo", "parameters": {"n": {"type": "integer"}}}}}

    async def scenario():
        await runtime.put_workspace("w", document)
        with pytest.raises(NotFound, match="no function 'g'"):
            await runtime.run("w", "g")
        with pytest.raises(InvalidParameters, match="'n'"):
            await runtime.run("w", "f", {"n": "three"})

    asyncio.run(scenario())


def test_bad_names_are_invalid_requests(tmp_path):
    runtime, _ = fake_runtime(tmp_path)
    with pytest.raises(InvalidRequest):
        asyncio.run(runtime.put_workspace("../etc", workspace(a="x")))
    with pytest.raises(InvalidRequest):
        runtime.get_workspace("../etc")


def test_per_function_limits_are_capped_by_the_server_maxima(tmp_path):
    runtime, _ = fake_runtime(
        tmp_path, js_timeout_ms=1000, js_memory_mb=64, python_timeout_ms=3000, python_memory_mb=128
    )
    functions = parse_workspace(
        "w",
        {
            "functions": {
                "small": {"code": "", "timeout": 200, "memory": 16},
                "big": {"code": "", "timeout": 99999, "memory": 9999},
                "default": {"code": "", "language": "python"},
            }
        },
    ).functions
    small, big, default = (runtime.limits(functions[name]) for name in ("small", "big", "default"))
    assert (small.timeout, small.memory) == (0.2, 16 * 2**20)
    assert (big.timeout, big.memory) == (1.0, 64 * 2**20)
    assert (default.timeout, default.memory) == (3.0, 128 * 2**20)


def test_a_third_workspace_evicts_the_least_recently_used(tmp_path):
    runtime, factory = fake_runtime(tmp_path, max_warm_sandboxes=2)

    async def scenario():
        for name in ("a", "b", "c"):
            await runtime.put_workspace(name, workspace(f="count"))
        return (await runtime.run("a", "f")).result

    assert asyncio.run(scenario()) == 1
    assert factory.built[0].closed and len(factory.built) == 4


def test_idle_sandboxes_are_dropped(tmp_path):
    runtime, factory = fake_runtime(tmp_path, idle_timeout=0.2)

    async def scenario():
        await runtime.start()
        await runtime.put_workspace("w", workspace(f="count"))
        await asyncio.sleep(0.5)
        closed = factory.built[0].closed
        await runtime.close()
        return closed

    assert asyncio.run(scenario()) is True


def test_concurrent_function_imports_into_one_workspace_both_land(tmp_path):
    import io
    import tarfile

    def archive(name):
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w:gz") as tar:
            source = b"echo"
            info = tarfile.TarInfo(f"{name}.js")
            info.size = len(source)
            tar.addfile(info, io.BytesIO(source))
        return data.getvalue()

    runtime, _ = fake_runtime(tmp_path)

    async def scenario():
        await runtime.put_workspace("w", workspace(first="echo"))
        await asyncio.gather(*(runtime.import_archive("w", archive(name)) for name in ("a", "b", "c")))
        return sorted(runtime.get_workspace("w").functions)

    assert asyncio.run(scenario()) == ["a", "b", "c", "first"]


def test_a_step_of_closing_that_hangs_is_logged_and_passed_over(monkeypatch, caplog):
    monkeypatch.setattr(runtime_module, "CLOSE_TIMEOUT", 0.05)
    ended = []

    async def closes():
        ended.append("closed")

    async def main():
        await runtime_module._bounded("a hung thing", asyncio.Event().wait())
        await runtime_module._bounded("a quick thing", closes())

    asyncio.run(main())
    assert ended == ["closed"]
    assert "closing a hung thing took more than 0.05 s" in caplog.text


def test_each_end_of_a_synchronous_run_is_recorded_under_the_id_it_answers_with(tmp_path):
    runtime, _ = fake_runtime(tmp_path, js_timeout_ms=100)

    async def scenario():
        await runtime.start()
        try:
            await runtime.put_workspace("w", workspace(hello="echo", slow="sleep 0.08", stuck="sleep 5"))
            answered = await runtime.run("w", "hello", {"name": "x"}, owner="token-1")
            succeeded = await runtime.get_execution(answered.execution_id)
            with pytest.raises(TimeoutExceeded) as timed_out:
                await runtime.run("w", "stuck")
            failed = await runtime.get_execution(timed_out.value.execution_id)
            task = asyncio.create_task(runtime.run("w", "slow"))
            await asyncio.sleep(0.02)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            records, _ = await runtime.list_executions(function="slow")
            return answered, succeeded, timed_out.value, failed, records
        finally:
            await runtime.close()

    answered, succeeded, error, failed, records = asyncio.run(scenario())
    assert succeeded.status == "successful" and succeeded.result == answered.result == {"name": "x"}
    assert (succeeded.workspace, succeeded.function, succeeded.owner) == ("w", "hello", "token-1")
    assert succeeded.parameters == {"name": "x"} and succeeded.logs == [] and succeeded.duration == 0.1
    assert succeeded.created == succeeded.started <= succeeded.finished and succeeded.error is None
    assert error.details["execution"] == error.execution_id == failed.id
    assert failed.status == "failed" and failed.error["error"] == error.code and failed.duration == 100
    [dismissed] = records
    assert dismissed.status == "dismissed" and "cancelled before it ended" in dismissed.error["message"]
    assert dismissed.finished is not None and dismissed.result is None
