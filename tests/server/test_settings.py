from pathlib import Path

import pytest

from fnbox.server.settings import SETTINGS, SettingsError, load_settings, markdown_table, parse_size


def test_defaults_follow_the_model_service():
    settings = load_settings(environ={})
    runtime = settings.runtime
    assert (settings.host, settings.port, settings.data_dir) == ("127.0.0.1", 4000, "data/functions/")
    assert runtime.js_timeout_ms == runtime.python_timeout_ms == 20000
    assert runtime.max_warm_sandboxes == 500
    assert runtime.js_memory_mb == 100 and runtime.python_memory_mb == 512
    assert runtime.idle_timeout == 3600
    assert settings.request_max_size == 1024 * 1024
    assert settings.update_scripts_on_startup is False
    assert runtime.python_modules is None and runtime.workers >= 1  # None: every vetted module


def test_every_variable_is_read():
    settings = load_settings(
        environ={
            "PORT": "5000",
            "FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH": "/tmp/x",
            "FUNCTIONS_RUN_TIMEOUT": "1500",
            "PYTHON_FUNCTIONS_RUN_TIMEOUT": "2500",
            "FUNCTIONS_WORKERS_MAX_LRU": "2",
            "NODE_WORKER_MAX_OLD_GENERATION_SIZE_MB": "64",
            "PYTHON_WORKER_MAX_MEMORY_MB": "256",
            "INACTIVE_NODE_WORKER_DELETION_TIMEOUT": "10",
            "NODE_BUILTIN_MODULES": "url, util",
            "PYTHON_BUILTIN_MODULES": "math, json",
            "REQUEST_MAX_SIZE": "100kb",
            "UPDATE_SCRIPTS_ON_STARTUP": "yes",
            "FUNCTIONS_WORKERS": "3",
            "FUNCTIONS_WORKER_MAX_RSS_MB": "1024",
            "SHUTDOWN_GRACE_PERIOD": "5",
            "ACCESS_LOG": "yes",
        }
    )
    runtime = settings.runtime
    assert settings.port == 5000 and settings.data_dir == "/tmp/x"
    assert (runtime.js_timeout_ms, runtime.python_timeout_ms) == (1500, 2500)
    assert runtime.max_warm_sandboxes == 2 and runtime.idle_timeout == 10
    assert (runtime.js_memory_mb, runtime.python_memory_mb) == (64, 256)
    assert runtime.node_modules == ("url", "util") and runtime.python_modules == ("math", "json")
    assert settings.request_max_size == 100 * 1024
    assert settings.update_scripts_on_startup is True and runtime.workers == 3
    assert runtime.js_worker_rss_mb == 1024 and runtime.shutdown_grace == 5 and settings.access_log is True


def test_every_setting_fills_a_field_and_its_default_is_the_fields_own():
    settings = load_settings(environ={})
    for setting in SETTINGS:
        owner, _, name = setting.field.rpartition(".")
        value = getattr(settings.runtime if owner == "runtime" else settings, name)
        assert value == setting.default(), setting.variable


def test_the_readme_table_is_the_declared_settings():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert markdown_table() in readme, "README's settings table differs: paste `python -m fnbox.server.settings`"


def test_node_modules_take_the_node_prefix_and_may_be_none():
    assert load_settings(environ={"NODE_BUILTIN_MODULES": "node:url, zlib"}).runtime.node_modules == ("url", "zlib")
    assert load_settings(environ={"NODE_BUILTIN_MODULES": ""}).runtime.node_modules == ()


def test_zero_workers_keeps_the_sandboxes_in_process():
    assert load_settings(environ={"FUNCTIONS_WORKERS": "0"}).runtime.workers == 0


@pytest.mark.parametrize(
    "variable, value",
    [
        ("PORT", "http"),
        ("FUNCTIONS_RUN_TIMEOUT", "-1"),
        ("FUNCTIONS_WORKERS_MAX_LRU", "0"),
        ("FUNCTIONS_WORKERS", "-1"),
        ("REQUEST_MAX_SIZE", "lots"),
        ("UPDATE_SCRIPTS_ON_STARTUP", "maybe"),
        ("PYTHON_BUILTIN_MODULES", "math, os"),
        ("NODE_BUILTIN_MODULES", "crypto, child_process"),
    ],
)
def test_a_bad_value_names_its_variable(variable, value):
    with pytest.raises(SettingsError, match=variable):
        load_settings(environ={variable: value})


def test_flags_win_over_the_environment():
    settings = load_settings(environ={"PORT": "5000"}, port=6000, host=None)
    assert settings.port == 6000 and settings.host == "127.0.0.1"


@pytest.mark.parametrize(
    "text, size", [("512", 512), ("1kb", 1024), ("1mb", 1048576), ("1.5MB", 1572864), ("2gb", 2 * 1024**3)]
)
def test_sizes_parse_like_the_model_service(text, size):
    assert parse_size(text) == size


def test_the_outbound_settings_are_read():
    runtime = load_settings(
        environ={
            "FUNCTIONS_EGRESS": "api.example.com, *.stripe.com, 10.0.0.0/8",
            "FUNCTIONS_EGRESS_MAX_REQUESTS": "5",
            "FUNCTIONS_EGRESS_MAX_CONCURRENCY": "2",
            "FUNCTIONS_EGRESS_MAX_RESPONSE_BYTES": "1mb",
            "FUNCTIONS_CONCURRENCY_PER_SANDBOX": "8",
        }
    ).runtime
    assert runtime.egress == "api.example.com, *.stripe.com, 10.0.0.0/8"
    assert (runtime.egress_max_requests, runtime.egress_max_concurrency) == (5, 2)
    assert runtime.egress_max_response_bytes == 1024 * 1024 and runtime.concurrency_per_sandbox == 8
    assert runtime.egress_settings().build().policy.mode == "list"


@pytest.mark.parametrize(
    "variable, value",
    [
        ("FUNCTIONS_EGRESS", "public, none"),
        ("FUNCTIONS_EGRESS", "http://api.example.com/"),
        ("FUNCTIONS_EGRESS_MAX_REQUESTS", "0"),
        ("FUNCTIONS_EGRESS_MAX_RESPONSE_BYTES", "huge"),
        ("FUNCTIONS_CONCURRENCY_PER_SANDBOX", "-2"),
    ],
)
def test_a_bad_outbound_setting_names_its_variable(variable, value):
    with pytest.raises(SettingsError, match=variable):
        load_settings(environ={variable: value})


def test_the_bounds_on_records_and_connections_are_read():
    settings = load_settings(
        environ={
            "EXECUTIONS_MAX_RECORD_BYTES": "64kb",
            "EXECUTIONS_MAX_BYTES": "2gb",
            "HTTP_MAX_CONNECTIONS": "100",
            "HTTP_MAX_HEADER_SIZE": "8kb",
            "HTTP_REQUEST_TIMEOUT": "3",
            "HTTP_KEEP_ALIVE_TIMEOUT": "2",
            "FUNCTIONS_QUARANTINE_SECONDS": "30",
        }
    )
    assert settings.runtime.quarantine_seconds == 30
    assert (settings.runtime.executions_max_record_bytes, settings.runtime.executions_max_bytes) == (
        64 * 1024,
        2 * 1024**3,
    )
    assert (settings.http_max_connections, settings.http_max_header_size) == (100, 8 * 1024)
    assert (settings.http_request_timeout, settings.http_keep_alive_timeout) == (3, 2)
    for variable in ("EXECUTIONS_MAX_RECORD_BYTES", "HTTP_MAX_CONNECTIONS", "HTTP_REQUEST_TIMEOUT"):
        with pytest.raises(SettingsError, match=variable):
            load_settings(environ={variable: "-1"})


def test_the_lease_of_a_shared_database_is_read_and_must_be_positive():
    settings = load_settings(environ={"FNBOX_DATABASE_LEASE_MS": "500"})
    assert settings.runtime.database_lease_ms == 500
    with pytest.raises(SettingsError, match="FNBOX_DATABASE_LEASE_MS"):
        load_settings(environ={"FNBOX_DATABASE_LEASE_MS": "0"})
