"""The `fnbox` command line, driven through subprocesses against one real server (and with --local)."""

import base64
import json
import os
import pty
import random
import subprocess
import sys
import tarfile

import pytest
import yaml

from fnbox.server.cli.main import build_parser
from fnbox.server.cli.output import Progress, table
from tests.archives.test_archive import BUILDERS
from tests.processes import ROOT, free_port, running_server

pytestmark = pytest.mark.slow  # a real server, worker processes or a subprocess

GREET_JS = 'console.log("greeting " + name);\nreturn "Hello " + name;\n'
GREET_YAML = "description: Greets someone\nparameters:\n  name: {type: string, default: world}\n"
STEPS_PY = "for i in range(n):\n    print('step', i)\nreturn {'steps': n}\n"
STEPS_YAML = "parameters:\n  n: {type: integer, default: 3}\n"
ECHO = {
    "functions": {
        "echo": {
            "language": "python",
            "code": "return {'n': n, 's': s, 'flag': flag, 'items': items}",
            "parameters": {
                "n": {"type": "integer"},
                "s": {"type": "string"},
                "flag": {"type": "boolean"},
                "items": {"type": "array", "default": []},
            },
        },
        "fail": {"code": 'console.warn("about to fail");\nthrow new Error("boom");'},
    }
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module, started with `--import` over a good and a bad archive."""
    imports = tmp_path_factory.mktemp("imports")
    (imports / "seeded.tar.gz").write_bytes(BUILDERS["tar.gz"]({"function.py": "return 'seeded'\n"}))
    (imports / "broken.zip").write_bytes(BUILDERS["zip"]({"bad.js": "let x = ;"}))
    with running_server(
        tmp_path_factory.mktemp("data"), args=["--import", str(imports)], FUNCTIONS_WORKERS="1"
    ) as running:
        yield running


def fnbox(*args, url=None, cwd=None, env=None, stderr=subprocess.PIPE):
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    if url is not None:
        environ["FNBOX_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "fnbox", *args],
        cwd=cwd or ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        timeout=60,
    )


def ok(*args, **options):
    done = fnbox(*args, **options)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def demo(tmp_path):
    folder = tmp_path / "demo"
    folder.mkdir()
    files = {
        "greet.js": GREET_JS,
        "greet.yaml": GREET_YAML,
        "steps.py": STEPS_PY,
        "steps.yaml": STEPS_YAML,
        "README.md": "notes",
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


# ---- against a server -------------------------------------------------------------------


def test_start_up_import_serves_the_good_archive_and_logs_the_bad_one(server):
    assert ok("run", "seeded", "seeded", url=server.url).stdout.strip() == '"seeded"'
    assert "broken" not in ok("ls", url=server.url).stdout.split()
    assert "broken.zip failed" in server.log() and "does not compile" in server.log()


def test_deploy_a_folder_then_ls_run_and_export(server, demo, tmp_path):
    deployed = ok("deploy", "demo", str(demo), url=server.url)
    assert deployed.stdout.strip() == "deployed workspace demo: 2 functions (greet, steps)"
    assert "README.md left out" in deployed.stderr
    assert "demo" in ok("ls", url=server.url).stdout.split()
    listing = ok("ls", "demo", url=server.url).stdout.splitlines()
    assert listing[0].split() == ["FUNCTION", "LANGUAGE", "PARAMETERS", "DESCRIPTION"]
    assert listing[1].split() == ["greet", "javascript", "name:", "string", "=", '"world"', "Greets", "someone"]
    assert listing[1].index("javascript") == listing[2].index("python")  # aligned columns

    done = ok("run", "demo", "greet", "-p", "name=Ada", url=server.url)
    assert json.loads(done.stdout) == "Hello Ada"
    assert done.stderr.strip().endswith("info   greeting Ada")

    ok("export", "demo", url=server.url, cwd=tmp_path)
    with tarfile.open(tmp_path / "demo.tar.gz") as archive:
        assert archive.getnames() == ["workspace.yaml"]
    ok("deploy", "copy", str(tmp_path / "demo.tar.gz"), url=server.url)
    original, copy = (json.loads(ok("ls", name, "--json", url=server.url).stdout) for name in ("demo", "copy"))
    assert original == copy


def test_deploy_takes_a_yaml_file_one_source_file_and_a_seed_archive(server, tmp_path):
    (tmp_path / "tools.yaml").write_text(yaml.safe_dump(ECHO))
    (tmp_path / "double.py").write_text("return x * 2\n")
    (tmp_path / "double.yaml").write_text("parameters:\n  x: {type: number}\n")
    (tmp_path / "shout.tar.gz").write_bytes(BUILDERS["tar.gz"]({"function.js": "return 'HEY';"}))
    ok("deploy", "tools", str(tmp_path / "tools.yaml"), url=server.url)
    ok("deploy", "tools", str(tmp_path / "double.py"), url=server.url)
    ok("deploy", "tools", str(tmp_path / "shout.tar.gz"), url=server.url)
    ok("deploy", "tools", str(tmp_path / "shout.tar.gz"), "--function", "yell", url=server.url)
    document = json.loads(ok("ls", "tools", "--json", url=server.url).stdout)
    assert sorted(document["functions"]) == ["double", "echo", "fail", "shout", "yell"]
    assert json.loads(ok("run", "tools", "double", "-p", "x=21", url=server.url).stdout) == 42


def test_parameters_are_json_when_they_parse_and_text_otherwise(server, tmp_path):
    ok("deploy", "params", _yaml_file(tmp_path, ECHO), url=server.url)
    done = ok(
        "run",
        "params",
        "echo",
        "-p",
        "n=3",
        "-p",
        "s=hello world",
        "-p",
        "flag=true",
        "--params-json",
        '{"items": [1, "a"], "s": "overridden"}',
        "--json",
        url=server.url,
    )
    answer = json.loads(done.stdout)
    assert answer["result"] == {"n": 3, "s": "hello world", "flag": True, "items": [1, "a"]}
    assert set(answer) >= {"result", "logs", "duration", "execution"}
    assert fnbox("run", "params", "echo", "-p", "oops", url=server.url).returncode == 2
    not_utf8 = fnbox("run", "params", "echo", "-p", os.fsdecode(b"s=caf\xe9"), url=server.url)  # Latin-1 bytes
    assert not_utf8.returncode == 2 and "must be UTF-8 text" in not_utf8.stderr and "Traceback" not in not_utf8.stderr


def test_a_failed_run_exits_non_zero_with_the_code_the_message_and_the_logs(server, tmp_path):
    ok("deploy", "failing", _yaml_file(tmp_path, ECHO), url=server.url)
    done = fnbox("run", "failing", "fail", url=server.url)
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert "warn   about to fail" in lines[0]
    assert lines[1].startswith("fnbox: FunctionError: ") and "boom" in lines[1]
    assert any(line.startswith("  execution: ") for line in lines)

    missing = fnbox("run", "failing", "nope", url=server.url)
    assert (
        missing.returncode == 1
        and "NotFound" in missing.stderr
        and "`fnbox ls failing` lists its functions" in missing.stderr
    )
    wrong = fnbox("run", "failing", "echo", "-p", "n=x", url=server.url)
    assert "InvalidParameters" in wrong.stderr and "read as JSON" in wrong.stderr


def test_run_async_then_follow_the_logs_until_the_end(server, demo):
    ok("deploy", "steps", str(demo), url=server.url)
    execution = ok("run", "steps", "steps", "-p", "n=4", "--async", url=server.url).stdout.strip()
    followed = ok("logs", execution, "-f", url=server.url)
    assert [line.split(None, 2)[2] for line in followed.stdout.splitlines()] == [f"step {i}" for i in range(4)]
    assert f"execution {execution} successful in" in followed.stderr
    assert ok("logs", execution, url=server.url).stdout == followed.stdout
    assert ok("logs", execution, "--tail", "1", url=server.url).stdout.strip().endswith("step 3")
    lines = [json.loads(line) for line in ok("logs", execution, "-f", "--json", url=server.url).stdout.splitlines()]
    assert lines[-1]["end"]["status"] == "successful" and lines[0]["message"] == "step 0"


def test_following_a_failed_execution_exits_non_zero(server, tmp_path):
    ok("deploy", "doomed", _yaml_file(tmp_path, ECHO), url=server.url)
    started = json.loads(ok("run", "doomed", "fail", "--async", "--json", url=server.url).stdout)
    assert started["status"] == "accepted"
    followed = fnbox("logs", started["id"], "-f", url=server.url)
    assert followed.returncode == 1 and "about to fail" in followed.stdout
    assert "failed" in followed.stderr and "FunctionError: " in followed.stderr


def test_executions_are_listed_with_filters_and_pages(server, tmp_path):
    ok("deploy", "listed", _yaml_file(tmp_path, ECHO), url=server.url)
    for n in (1, 2):
        ok("run", "listed", "echo", "-p", f"n={n}", "-p", "s=x", "-p", "flag=false", url=server.url)
    fnbox("run", "listed", "fail", url=server.url)
    rows = ok("executions", "--workspace", "listed", url=server.url).stdout.splitlines()
    assert rows[0].split()[:4] == ["ID", "STATUS", "WORKSPACE", "FUNCTION"]
    assert [row.split()[1:4] for row in rows[1:]] == [
        ["failed", "listed", "fail"],
        *[["successful", "listed", "echo"]] * 2,
    ]
    page = ok("executions", "--workspace", "listed", "--limit", "1", url=server.url)
    assert (
        len(page.stdout.splitlines()) == 2
        and "more: fnbox executions --workspace listed --limit 1 --after " in page.stderr
    )
    failed = json.loads(
        ok("executions", "--workspace", "listed", "--status", "failed", "--json", url=server.url).stdout
    )
    assert [item["function"] for item in failed["executions"]] == ["fail"]


def test_a_compile_error_at_deploy_exits_non_zero_and_the_old_version_stays(server, tmp_path):
    ok("deploy", "compiled", _yaml_file(tmp_path, ECHO), url=server.url)
    (tmp_path / "echo.js").write_text("let x = ;")
    done = fnbox("deploy", "compiled", str(tmp_path / "echo.js"), url=server.url)
    assert done.returncode == 1 and "CompilationError" in done.stderr and '"function": "echo"' in done.stderr
    assert json.loads(ok("ls", "compiled", "--json", url=server.url).stdout) == ECHO


def test_rm_deletes_and_a_second_rm_says_what_to_do(server, tmp_path):
    ok("deploy", "gone", _yaml_file(tmp_path, ECHO), url=server.url)
    assert ok("rm", "gone", url=server.url).stdout.strip() == "deleted workspace gone"
    again = fnbox("rm", "gone", url=server.url)
    assert again.returncode == 1 and "NotFound" in again.stderr and "`fnbox ls` lists the workspaces" in again.stderr


def test_a_big_deploy_draws_a_progress_bar_on_a_terminal_only(server, tmp_path):
    noise = base64.b64encode(random.Random(6).randbytes(450_000)).decode()
    path = tmp_path / "big.tar.gz"
    path.write_bytes(BUILDERS["tar.gz"]({"workspace.yaml": yaml.safe_dump({**ECHO, "notes": noise})}))
    assert path.stat().st_size > 300_000
    assert "uploading" not in ok("deploy", "big", str(path), url=server.url).stderr
    controller, terminal = pty.openpty()
    try:
        done = fnbox("deploy", "big", str(path), url=server.url, stderr=terminal)
        os.close(terminal)
        terminal = None
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        if terminal is not None:
            os.close(terminal)
        os.close(controller)
    assert done.returncode == 0
    assert "uploading [" in drawn.decode() and "100%" in drawn.decode()


def test_an_unreachable_server_says_how_to_start_one():
    done = fnbox("ls", url=f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 1
    assert "cannot reach fnbox" in done.stderr and "fnbox serve" in done.stderr and "--local" in done.stderr


def test_url_and_local_exclude_each_other():
    done = fnbox("ls", "--local", "--url", "http://127.0.0.1:1")
    assert done.returncode == 2 and "pass one of them" in done.stderr


# ---- without a server -------------------------------------------------------------------


def test_local_mode_works_on_a_data_directory_through_the_runtime(demo, tmp_path):
    data = tmp_path / "data"
    local = ("--local", "--data-dir", str(data))
    in_process = {"FUNCTIONS_WORKERS": "0"}  # faster; the one run below without it uses a worker process
    ok("deploy", "demo", str(demo), *local, env=in_process)
    assert (data / "demo" / "workspace.yaml").is_file()
    assert ok("ls", *local).stdout.split() == ["demo"]
    done = ok("run", "demo", "greet", "-p", "name=local", *local)
    assert json.loads(done.stdout) == "Hello local" and "greeting local" in done.stderr
    execution = ok("run", "demo", "steps", "-p", "n=2", "--async", *local, env=in_process).stdout.strip()
    followed = ok("logs", execution, "-f", *local)
    assert [line.split(None, 2)[2] for line in followed.stdout.splitlines()] == ["step 0", "step 1"]
    listed = json.loads(ok("executions", "--json", *local).stdout)["executions"]
    assert [item["function"] for item in listed] == ["steps", "greet"]
    ok("export", "demo", "-o", str(tmp_path / "out.tar.gz"), *local)
    ok("rm", "demo", *local, env=in_process)
    assert fnbox("ls", "demo", *local).returncode == 1
    environ = {**in_process, "FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH": str(data)}
    ok("deploy", "demo", str(tmp_path / "out.tar.gz"), "--local", env=environ)
    assert ok("ls", *local).stdout.split() == ["demo"]


# ---- the parser and the output, in process ----------------------------------------------


def test_every_command_has_help_with_an_example():
    assert "examples:" in ok("--help").stdout
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert set(commands) == {"serve", "migrate", "deploy", "ls", "secret", "rm", "export", "run", "logs", "executions"}
    for name, sub in commands.items():
        assert "example:" in sub.format_help(), name


def test_the_help_of_migrate_names_everything_it_copies_and_what_running_it_again_does():
    commands = build_parser()._subparsers._group_actions[0].choices
    text = " ".join(commands["migrate"].format_help().split())
    assert "workspaces, execution records, secrets and tokens into the database" in text
    assert "a workspace or a secret deleted (or a token revoked) in the database since is never brought back" in text
    assert "An execution record already there changes only to take the end the directory recorded since" in text


def test_common_options_go_before_or_after_the_command():
    parser = build_parser()
    assert parser.parse_args(["--json", "ls"]).json and parser.parse_args(["ls", "--json"]).json
    assert parser.parse_args(["--url", "http://x", "ls"]).url == "http://x"
    serve = parser.parse_args(["serve", "--port", "5000", "--import", "dir"])
    assert (serve.port, serve.import_dir) == (5000, "dir")


def test_tables_align_and_the_progress_bar_counts_bytes(tmp_path):
    assert table(("A", "BB"), [("xxx", 1), ("y", 22)]).splitlines() == ["A    BB", "xxx  1", "y    22"]
    with open(tmp_path / "bar", "w") as stream:
        progress = Progress(1000, stream)
        progress.advance(500)
        assert progress.render().startswith("uploading [###############...............]  50%")
        assert Progress.for_upload(10**6, stream) is None  # not a terminal


def _yaml_file(folder, document):
    path = folder / "workspace-document.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)
