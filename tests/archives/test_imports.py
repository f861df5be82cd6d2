"""Start-up import: every archive of a directory into the workspace its name gives."""

import asyncio
import logging

import pytest
import yaml

from fnbox.archives.imports import import_directory, workspace_name
from fnbox.server.settings import SettingsError, load_settings
from fnbox.workspaces.runtime import Runtime
from tests.archives.test_archive import BUILDERS, tar

BILLING = {
    "functions": {
        "invoice": {
            "language": "python",
            "code": "return 'invoice ' + str(n)",
            "parameters": {"n": {"type": "integer"}},
        }
    }
}


@pytest.fixture
def archives(tmp_path):
    folder = tmp_path / "archives"
    (folder / "billing").mkdir(parents=True)
    (folder / "billing.tar.gz").write_bytes(BUILDERS["tar.gz"]({"workspace.yaml": yaml.safe_dump(BILLING)}))
    (folder / "billing" / "refund.zip").write_bytes(BUILDERS["zip"]({"function.js": "return 'refund';"}))
    (folder / "greet.tar.xz").write_bytes(BUILDERS["tar.xz"]({"function.py": "return 'hello'\n"}))
    (folder / "broken.tar").write_bytes(tar(("bad.js", "let x = ;")))
    (folder / "evil.tgz").write_bytes(tar(("../escape.py", "return 1\n"), mode="w:gz"))
    (folder / "notes.txt").write_text("not an archive")
    (folder / ".hidden.tar").write_bytes(b"ignored")
    return folder


def test_every_archive_is_imported_and_each_failure_is_reported(tmp_path, archives, caplog):
    caplog.set_level(logging.INFO, logger="fnbox")

    async def scenario():
        async with Runtime(tmp_path / "data") as runtime:
            report = await import_directory(runtime, archives)
            assert sorted(runtime.list_workspaces()) == ["billing", "greet"]
            assert sorted(runtime.get_workspace("billing").functions) == ["invoice", "refund"]
            assert (await runtime.run("billing", "refund", {})).result == "refund"
            assert (await runtime.run("greet", "greet", {})).result == "hello"
            return report

    report = asyncio.run(scenario())
    assert [path.rsplit("/", 2)[-1] for path in report.imported] == ["billing.tar.gz", "greet.tar.xz", "refund.zip"]
    assert len(report.problems) == 2
    broken, evil = report.problems
    assert "broken.tar" in broken and "does not compile" in broken
    assert "evil.tgz" in evil and "escape.py" in evil
    logged = caplog.text
    assert "broken.tar" in logged and "evil.tgz" in logged and "notes.txt skipped" in logged
    assert ".hidden" not in logged
    assert not (tmp_path / "escape.py").exists()


def test_a_folder_archive_adds_to_the_workspace_it_names(tmp_path):
    folder = tmp_path / "archives" / "tools"
    folder.mkdir(parents=True)
    (folder / "upper.tar").write_bytes(
        tar(("function.py", "return s.upper()\n"), ("function.yaml", "parameters:\n  s: {type: string}\n"))
    )

    async def scenario():
        async with Runtime(tmp_path / "data") as runtime:
            lower = {"code": "return s.toLowerCase();", "parameters": {"s": {"type": "string"}}}
            await runtime.put_workspace("tools", {"functions": {"lower": lower}})
            report = await import_directory(runtime, tmp_path / "archives")
            assert not report.problems
            assert sorted(runtime.get_workspace("tools").functions) == ["lower", "upper"]
            assert (await runtime.run("tools", "upper", {"s": "ab"})).result == "AB"

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "filename, name",
    [("billing.tar.gz", "billing"), ("a.TGZ", "a"), ("x.zip", "x"), ("notes.txt", None), (".zip", None)],
)
def test_the_workspace_is_named_after_the_file(filename, name):
    assert workspace_name(filename) == name


def test_the_server_imports_functions_location_at_start(make_client, archives):
    client = make_client(FUNCTIONS_LOCATION=str(archives))
    assert sorted(client.get("/v2/functions").json()) == ["billing", "greet"]
    answer = client.post("/v2/functions/billing/run/invoice", json={"parameters": {"n": 7}})
    assert answer.json()["result"] == "invoice 7"


def test_functions_location_must_be_a_directory(tmp_path):
    with pytest.raises(SettingsError, match="FUNCTIONS_LOCATION"):
        load_settings(environ={"FUNCTIONS_LOCATION": str(tmp_path / "missing")})
    assert load_settings(environ={}).functions_location is None
