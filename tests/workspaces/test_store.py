"""The workspace store: the tests of its interface run against both backends (files, PostgreSQL)."""

import os
from collections.abc import Callable, Iterator

import pytest

from fnbox.database import Database
from fnbox.sandboxes.errors import InsufficientStorage, PreconditionFailed
from fnbox.workspaces import files as files_module
from fnbox.workspaces import store as store_module
from fnbox.workspaces.document import document_version
from fnbox.workspaces.pgstore import PgStore
from fnbox.workspaces.store import FileStore, StoredDocumentError
from fnbox.workspaces.stores import ABSENT, ANY, WorkspaceStore
from tests.filesystems import fill, read_only, small_filesystem

DOCUMENT = {"functions": {"hello": {"code": "return 'hé';", "parameters": {"name": {"type": "string"}}}}}


@pytest.fixture(params=["files", pytest.param("postgresql", marks=pytest.mark.slow)])
def open_store(request, tmp_path) -> Iterator[Callable[[], WorkspaceStore]]:
    """Opens the store of one backend; each call opens it anew on the same data."""
    if request.param == "files":
        yield lambda: FileStore(tmp_path)
        return
    url = request.getfixturevalue("database_url")
    databases: list[Database] = []

    def open_database() -> WorkspaceStore:
        database = Database(url, max_size=4)
        database.open()
        databases.append(database)
        return PgStore(database)

    yield open_database
    for database in databases:
        database.close()


def test_a_saved_document_loads_back_unchanged(open_store):
    store = open_store()
    store.save("test", DOCUMENT)
    assert open_store().load("test") == DOCUMENT
    assert store.names() == ["test"]


def test_a_saved_document_is_a_file_in_its_folder(tmp_path):
    FileStore(tmp_path).save("test", DOCUMENT)
    assert (tmp_path / "test" / "workspace.yaml").is_file()


# Characters YAML treats specially: line breaks it folds (U+0085, U+2028, U+2029), controls,
# a BOM, quotes, indicators, and blank or trailing-space lines.
AWKWARD = [
    "\x85",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\x00",
    "\x1b",
    "\t",
    "\r",
    "\r\n",
    "\x7f",
    "\U0010ffff",
    "'",
    '"',
    "\\",
    "#",
    "- x",
    ": y",
    "\x0b",
    "\x0c",
    "",
    " ",
    "\n",
    "\n\n",
]


@pytest.mark.parametrize("text", AWKWARD, ids=[f"U+{ord(t[0]):04X}" if t else "empty" for t in AWKWARD])
def test_code_with_characters_yaml_treats_specially_loads_back_unchanged(open_store, text):
    store = open_store()
    for code in (text, f"a{text}b", f"line1\n{text}\nline3", f"  {text} \n x", f"{text}\n"):
        document = {"functions": {"f": {"code": code}}, code or "empty": [code, {"x": code}]}
        store.save("w", document)
        assert open_store().load("w") == document, repr(code)


def test_a_missing_workspace_loads_as_none(open_store):
    assert open_store().load("nope") is None
    assert open_store().names() == []
    assert FileStore(os.devnull + "-absent").names() == []


def test_a_crash_mid_write_keeps_the_old_document_and_no_temporary_file(tmp_path, monkeypatch):
    store = FileStore(tmp_path)
    store.save("test", DOCUMENT)

    def crash(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.save("test", {"functions": {}})
    assert store.load("test") == DOCUMENT
    assert os.listdir(tmp_path / "test") == ["workspace.yaml"]


def test_delete_removes_the_workspace(open_store):
    store = open_store()
    store.save("test", DOCUMENT)
    assert store.delete("test") is True
    assert store.load("test") is None
    assert store.names() == []
    assert store.delete("test") is False


def test_a_hand_edited_file_that_is_not_yaml_is_reported(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "workspace.yaml").write_text("functions: [unclosed\n")
    with pytest.raises(StoredDocumentError, match="not valid YAML"):
        FileStore(tmp_path).load("bad")


def test_yaml_is_loaded_safely(tmp_path):
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "workspace.yaml").write_text("functions: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(StoredDocumentError):
        FileStore(tmp_path).load("evil")


def test_a_save_or_delete_with_an_expected_version_happens_only_on_that_version(open_store):
    store = open_store()
    with pytest.raises(PreconditionFailed, match="no such workspace"):
        store.save("w", DOCUMENT, expected=ANY)
    store.save("w", DOCUMENT, expected=ABSENT)
    first = document_version(DOCUMENT)
    with pytest.raises(PreconditionFailed) as caught:
        store.save("w", {"functions": {}}, expected=ABSENT)
    assert caught.value.status == 412
    assert caught.value.details == {"workspace": "w", "version": first, "expected": ABSENT}
    store.save("w", {"functions": {}}, expected=first)
    with pytest.raises(PreconditionFailed, match="read it again"):
        store.save("w", DOCUMENT, expected=first)  # another save came first
    with pytest.raises(PreconditionFailed):
        store.delete("w", expected=first)
    assert open_store().load("w") == {"functions": {}}
    assert store.delete("w", expected=document_version({"functions": {}})) is True
    assert store.names() == []


def test_a_new_workspace_folder_is_fsynced_into_its_parent(tmp_path, monkeypatch):
    synced = []
    real = files_module.fsync_folder
    for module in (store_module, files_module):
        monkeypatch.setattr(module, "fsync_folder", lambda folder: (synced.append(folder), real(folder)))
    FileStore(tmp_path).save("new", DOCUMENT)
    assert synced == [tmp_path / "new", tmp_path]


def test_a_save_on_a_full_disk_answers_insufficient_storage_and_leaves_no_folder(tmp_path):
    with small_filesystem(tmp_path / "fs", "1m") as root:
        store = FileStore(root)
        store.save("kept", DOCUMENT)
        fill(root)
        big = {"functions": {"f": {"code": "return 1;", "description": "x" * 200_000}}}
        with pytest.raises(InsufficientStorage, match="full") as caught:
            store.save("new", big)
        assert caught.value.status == 507
        assert not (root / "new").exists()
        with pytest.raises(InsufficientStorage):
            store.save("kept", big)
        assert store.load("kept") == DOCUMENT
        assert sorted(p.name for p in (root / "kept").iterdir()) == ["workspace.yaml"]


def test_a_save_in_a_read_only_data_directory_answers_insufficient_storage(tmp_path):
    with small_filesystem(tmp_path / "fs") as root:
        FileStore(root).save("kept", DOCUMENT)
        read_only(root)
        with pytest.raises(InsufficientStorage, match="read-only"):
            FileStore(root).save("new", DOCUMENT)
        with pytest.raises(InsufficientStorage, match="read-only"):
            FileStore(root).delete("kept")
        assert FileStore(root).load("kept") == DOCUMENT
