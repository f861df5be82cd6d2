import subprocess
import sys

import pytest

from fnbox.sandboxes.errors import InvalidParameters, InvalidRequest
from fnbox.workspaces.document import check_parameters, parse_workspace


def doc(**function):
    return {"functions": {"f": {"code": "return 1;", **function}}}


def test_languages_and_their_aliases():
    for alias, language in [
        ("javascript", "javascript"),
        ("nodejs", "javascript"),
        ("js", "javascript"),
        ("python", "python"),
    ]:
        assert parse_workspace("w", doc(language=alias)).functions["f"].language == language
    assert parse_workspace("w", doc()).functions["f"].language == "javascript"


@pytest.mark.parametrize("name", ["", "1abc", "-x", "a b", "a/b", "x" * 65, "..", "é"])
def test_bad_workspace_names_are_refused(name):
    with pytest.raises(InvalidRequest, match="workspace name"):
        parse_workspace(name, doc())


@pytest.mark.parametrize(
    "name, language",
    [
        ("my-fn", "javascript"),
        ("class", "javascript"),
        ("lambda", "python"),
        ("cache", "python"),
        ("1f", "python"),
        ("_getattr_", "python"),
    ],
)
def test_function_names_must_be_identifiers_of_their_language(name, language):
    with pytest.raises(InvalidRequest, match=repr(name)):
        parse_workspace("w", {"functions": {name: {"code": "", "language": language}}})


@pytest.mark.parametrize(
    "function, message",
    [
        ({"code": 3}, "'code' must be a string"),
        ({"code": "", "language": "ruby"}, "unknown language"),
        ({"code": "", "parameters": {"x": {"type": "date"}}}, "unknown type"),
        ({"code": "", "parameters": {"x": {"type": "integer", "default": "one"}}}, "default"),
        ({"code": "", "timeout": -5}, "'timeout' must be a positive number"),
        ({"code": "", "memory": "lots"}, "'memory' must be a positive number"),
    ],
)
def test_bad_functions_are_refused_with_a_clear_message(function, message):
    with pytest.raises(InvalidRequest, match=message):
        parse_workspace("w", {"functions": {"f": function}})


def test_a_changed_document_is_a_new_version():
    one = parse_workspace("w", doc())
    assert parse_workspace("w", doc()).version == one.version
    assert parse_workspace("w", doc(description="x")).version != one.version


TYPED = parse_workspace(
    "w",
    doc(
        parameters={
            "s": {"type": "string"},
            "n": {"type": "number"},
            "i": {"type": "integer"},
            "b": {"type": "boolean"},
            "o": {"type": "object"},
            "a": {"type": "array"},
        }
    ),
).functions["f"]


@pytest.mark.parametrize("name, value", [("s", 1), ("n", "1"), ("i", 1.5), ("i", True), ("b", 0), ("o", []), ("a", {})])
def test_a_value_of_the_wrong_type_names_the_parameter(name, value):
    with pytest.raises(InvalidParameters, match=repr(name)) as caught:
        check_parameters(TYPED, {name: value})
    assert caught.value.details["parameter"] == name


def test_right_values_and_undeclared_parameters_pass():
    given = {"s": "x", "n": 1.5, "i": 2, "b": False, "o": {}, "a": [1], "extra": 1}
    assert check_parameters(TYPED, given) == given


def test_null_means_not_given_so_the_default_applies():
    given = {"s": None, "extra": None}
    assert check_parameters(TYPED, given) == {"extra": None}
    assert given == {"s": None, "extra": None}  # the caller's mapping is left as it was


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_any_identifier_is_a_parameter_name(language):
    names = [
        "id",
        "type",
        "object",
        "list",
        "filter",
        "format",
        "input",
        "class",
        "default",
        "from",
        "_id",
        "_getiter_",
        "cache",
        "log",
        "console",
        "params",
        "Date",
        "print",
    ]
    document = {"functions": {"f": {"code": "", "language": language, "parameters": {n: {} for n in names}}}}
    parameters = parse_workspace("w", document).functions["f"].parameters
    assert [p.name for p in parameters] == names


def test_a_parameter_name_that_is_no_identifier_says_how_to_read_it():
    document = {"functions": {"f": {"code": "", "language": "python", "parameters": {"first-name": {}}}}}
    with pytest.raises(InvalidRequest, match=r"not an identifier .* read it as params\['first-name'\]"):
        parse_workspace("w", document)


@pytest.mark.parametrize(
    "document",
    [
        doc(code="return '\ud800';"),
        {"functions": {"f\udc00": {"code": "return 1;"}}},
        {"functions": {"f": {"code": "return 1;"}}, "notes": ["ok", {"deep": "x\udfff"}]},
    ],
)
def test_a_lone_surrogate_in_a_document_is_refused(document):
    with pytest.raises(InvalidRequest, match="lone surrogate"):
        parse_workspace("w", document)


def test_a_lone_surrogate_in_the_parameters_is_refused_and_a_real_pair_passes():
    with pytest.raises(InvalidParameters, match=r"lone surrogate \(U\+D83D\)"):
        check_parameters(TYPED, {"s": "smile \ud83d", "extra": [1]})
    with pytest.raises(InvalidParameters, match="lone surrogate"):
        check_parameters(TYPED, {"o": {"\udc00": 1}})
    assert check_parameters(TYPED, {"s": "smile \U0001f600"}) == {"s": "smile \U0001f600"}


@pytest.mark.slow  # a fresh interpreter, to see what an import loads
def test_checking_documents_loads_no_engine():
    script = (
        "import sys\n"
        "from fnbox.workspaces.document import parse_workspace\n"
        "parse_workspace('w', {'functions': {'f': {'code': 'return 1'}, 'g': {'language': 'python', 'code': 'return 1'}}})\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'py_mini_racer', 'RestrictedPython'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "[]\n"), done.stderr


def test_each_language_is_known_by_its_aliases_and_refuses_its_reserved_names():
    for alias, language in {"js": "javascript", "nodejs": "javascript", "python": "python"}.items():
        document = {"functions": {"f": {"language": alias, "code": "return 1"}}}
        assert parse_workspace("w", document).functions["f"].language == language
    with pytest.raises(InvalidRequest, match="unknown language 'ruby' \\(javascript, nodejs, js, python\\)"):
        parse_workspace("w", {"functions": {"f": {"language": "ruby", "code": "1"}}})
    with pytest.raises(InvalidRequest, match="reserved in python"):
        parse_workspace("w", {"functions": {"_f": {"language": "python", "code": "return 1"}}})
    with pytest.raises(InvalidRequest, match="reserved in javascript"):
        parse_workspace("w", {"functions": {"setTimeout": {"code": "return 1"}}})


def test_a_workspace_may_narrow_the_egress_policy_with_a_list():
    document = {"egress": ["api.example.com", "*.stripe.com", "127.0.0.1"], "functions": {}}
    assert parse_workspace("w", document).egress == ("api.example.com", "*.stripe.com", "127.0.0.1")
    assert parse_workspace("w", {"functions": {}}).egress is None
    assert parse_workspace("w", {"egress": [], "functions": {}}).egress == ()


@pytest.mark.parametrize("egress", ["public", ["public"], ["http://x.test/"], [1], ["*."], ["a"] * 101])
def test_a_bad_egress_list_is_refused(egress):
    with pytest.raises(InvalidRequest, match="egress"):
        parse_workspace("w", {"egress": egress, "functions": {}})
