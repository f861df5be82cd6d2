import os

import pytest

from workspaces.store import FileStore, StoredDocumentError

DOCUMENT = {"functions": {"hello": {"code": "return 'hé';", "parameters": {"name": {"type": "string"}}}}}


def test_a_saved_document_loads_back_unchanged(tmp_path):
    store = FileStore(tmp_path)
    store.save("test", DOCUMENT)
    assert FileStore(tmp_path).load("test") == DOCUMENT
    assert (tmp_path / "test" / "workspace.yaml").is_file()
    assert store.names() == ["test"]


def test_a_missing_workspace_loads_as_none(tmp_path):
    assert FileStore(tmp_path).load("nope") is None
    assert FileStore(tmp_path / "absent").names() == []


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


def test_delete_removes_the_workspace(tmp_path):
    store = FileStore(tmp_path)
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
