"""What installing fnbox gives an application that embeds it: one import name and a pinned surface."""

import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx2 as httpx
import pytest

import fnbox
from tests.processes import ROOT, running_server


def test_the_embedding_surface_is_pinned():
    assert fnbox.__all__ == [
        "CompilationError",
        "Conflict",
        "Dismissed",
        "FnboxError",
        "Forbidden",
        "FunctionError",
        "InsufficientStorage",
        "InternalError",
        "InvalidParameters",
        "InvalidRequest",
        "MemoryLimitExceeded",
        "NotFound",
        "Overloaded",
        "PayloadTooLarge",
        "Runtime",
        "RuntimeOptions",
        "SandboxCrashed",
        "TimeoutExceeded",
        "Unauthorized",
    ]
    assert all(issubclass(getattr(fnbox, name), fnbox.FnboxError) for name in fnbox.__all__ if name.endswith("Error"))


@pytest.mark.slow  # builds and installs the package
def test_installing_fnbox_adds_one_import_name_and_the_script(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    before = set(p.name for p in site.iterdir())
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    added = {name for name in set(p.name for p in site.iterdir()) - before if not name.endswith(".dist-info")}
    assert added == {"fnbox"}
    assert (venv / "bin" / "fnbox").is_file()
    assert (site / "fnbox" / "sandboxes" / "js" / "runtime.js").is_file()


@pytest.mark.slow  # a real server with worker processes
def test_a_working_directory_with_its_own_fnbox_cannot_shadow_the_installed_one(tmp_path):
    decoy = tmp_path / "project"
    marker = tmp_path / "decoy-ran"
    for package in ("fnbox", "fnbox/sandboxes", "sandboxes"):
        (decoy / package).mkdir(parents=True)
        (decoy / package / "__init__.py").write_text(f"open({str(marker)!r}, 'a').write({package!r})\n")
    (decoy / "fnbox" / "sandboxes" / "worker.py").write_text(f"open({str(marker)!r}, 'a').write('worker')\n")
    script = Path(sysconfig.get_path("scripts")) / "fnbox"
    document = {
        "functions": {
            "hi": {"code": "return 'js ' + name;", "parameters": {"name": {"type": "string"}}},
            "py": {"language": "python", "code": "return 'py ' + name", "parameters": {"name": {"type": "string"}}},
        }
    }
    with running_server(tmp_path / "data", command=[str(script)], cwd=decoy, FUNCTIONS_WORKERS="1") as server:
        assert httpx.post(f"{server.url}/v2/functions/w", json=document).status_code == 200
        for function in ("hi", "py"):
            answer = httpx.post(f"{server.url}/v2/functions/w/run/{function}", json={"parameters": {"name": "x"}})
            assert answer.status_code == 200, answer.text
        assert not marker.exists(), marker.read_text()
