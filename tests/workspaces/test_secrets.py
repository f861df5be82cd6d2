"""The secret store: encryption at rest, its key, rotation, and redaction."""

import json
import threading

from cryptography.fernet import Fernet

from fnbox.workspaces.secrets import SecretStore, redact

VALUE = "sk-live-0123456789abcdef"


def test_values_are_encrypted_at_rest_under_a_generated_key_with_mode_0600(tmp_path):
    store = SecretStore(tmp_path)
    store.set("w", "API_KEY", VALUE)
    assert VALUE not in (tmp_path / "secrets.json").read_text()
    assert (tmp_path / "secrets.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600
    assert SecretStore(tmp_path).values("w") == {"API_KEY": VALUE}


def test_a_key_from_the_setting_and_its_rotation(tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    SecretStore(tmp_path, keys=old).set("w", "K", VALUE)
    assert not (tmp_path / "secrets.key").exists()
    rotated = SecretStore(tmp_path, keys=f"{new},{old}")
    assert rotated.values("w") == {"K": VALUE}
    assert SecretStore(tmp_path, keys=new).values("w") == {"K": VALUE}
    stored = json.loads((tmp_path / "secrets.json").read_text())
    assert Fernet(new.encode()).decrypt(stored["w"]["K"]["value"].encode()).decode() == VALUE


def test_redact_reaches_keys_nested_values_and_overlapping_secrets():
    secrets = {"A": "abc123", "B": "abc123456"}
    assert redact({"abc123456": ["x abc123 y", 1]}, secrets) == {"***": ["x *** y", 1]}


def test_names_and_times_only_and_changes_reach_the_next_read(tmp_path):
    store = SecretStore(tmp_path)
    store.set("w", "A", "first-value")
    assert store.values("w") == {"A": "first-value"}
    store.set("w", "A", "second-value")
    assert store.values("w") == {"A": "second-value"}
    assert [item["name"] for item in store.list("w")] == ["A"] and "value" not in store.list("w")[0]
    store.delete("w", "A")
    assert store.values("w") == {} and store.list("w") == []


def test_concurrent_changes_never_leave_a_stale_value_cached(tmp_path):
    store = SecretStore(tmp_path)
    store.set("w", "A", "v0")
    writer = threading.Thread(target=lambda: [store.set("w", "A", f"v{i}") for i in range(1, 20)])
    writer.start()
    while writer.is_alive():
        store.values("w")
    writer.join()
    assert store.values("w") == {"A": "v19"}
