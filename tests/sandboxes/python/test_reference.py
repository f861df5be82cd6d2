"""The README's Python reference is the policy's own (fnbox.sandboxes.python.reference)."""

from pathlib import Path

from fnbox.sandboxes.python.modules import ALLOWED_MODULES, LEFT_OUT
from fnbox.sandboxes.python.reference import markdown, members

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()


def test_the_readme_holds_the_generated_reference():
    assert markdown() in README, "README's Python section differs: paste `python -m fnbox.sandboxes.python.reference`"


def test_every_module_is_listed_with_its_members_and_what_it_leaves_out():
    listed = members()
    assert list(listed) == list(ALLOWED_MODULES)
    for module, names in listed.items():
        assert names, module
        assert f"| `{module}` | {', '.join(names)} |" in README
        for member in LEFT_OUT.get(module, {}):
            assert f"`{module}.{member}`" in README
