"""The runtime's source as isolates get it."""

from __future__ import annotations

import re
from pathlib import Path

import fnbox.sandboxes.js.context as context
from fnbox.sandboxes.js.context import without_comment_lines

RUNTIME = Path(context.__file__).with_name("runtime.js").read_text(encoding="utf-8")
_QUOTED = re.compile(r'"(?:[^"\\\n]|\\.)*"' + r"|'(?:[^'\\\n]|\\.)*'")


def test_only_lines_that_are_a_comment_go():
    source = "const a = 1; // kept\n  // gone\n\t//gone too\nconst url = 'http://x';\n// last"
    assert without_comment_lines(source) == "const a = 1; // kept\nconst url = 'http://x';"


def test_no_template_literal_of_the_runtime_spans_lines_so_no_comment_line_is_in_one():
    for number, line in enumerate(RUNTIME.split("\n"), 1):
        code = _QUOTED.sub('""', line.split("//")[0] if line.lstrip().startswith("//") else line)
        assert code.count("`") % 2 == 0, f"runtime.js:{number}: a template literal across lines: {line!r}"


def test_isolates_get_the_runtime_without_its_comment_lines():
    assert without_comment_lines(RUNTIME) == context._RUNTIME
    assert not any(line.lstrip().startswith("//") for line in context._RUNTIME.split("\n"))
