"""The README's examples work as printed."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fnbox.sandboxes.errors import ERROR_CLASSES

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


@pytest.mark.slow  # a subprocess
def test_the_embedding_example_runs(tmp_path):
    section = README.split("## Embedding", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("42 []")
    assert (tmp_path / "data" / "functions" / "demo" / "workspace.yaml").is_file()


def test_ci_runs_the_readme_test_command():
    command = re.search(r"## Test it\n\n```bash\n(.*?)\n```", README).group(1)
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert command in ci.splitlines()


def test_the_error_table_lists_every_error_code_with_its_status():
    section = README.split("## Errors", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| (\w+) \| ([^|]+) \|", section, re.M)[1:])
    assert list(rows) == [cls.code for cls in ERROR_CLASSES]
    for cls in ERROR_CLASSES:
        assert rows[cls.code].strip() == (str(cls.status) if cls.answered else "(none)"), cls.code
