"""Host calls without V8: the piece protocol of host.py over plain memory, and every op's
checks of what JavaScript hands it (untrusted data, all of it)."""

from __future__ import annotations

import base64
import ctypes
import json
import zlib
from typing import Any

import pytest

from fnbox.sandboxes.js import host as host_module
from fnbox.sandboxes.js.engine import Handle, SharedMemory
from fnbox.sandboxes.js.host import HOST_CAPACITY, HOST_HEADER, HostChannel, HostError
from fnbox.sandboxes.js.hostops import op_named


class Region:
    """A host region in ctypes memory, driven as runtime.js's hostCall drives it."""

    def __init__(self, memory_limit: int = 64 << 20) -> None:
        self.buffer = ctypes.create_string_buffer(HOST_HEADER * 4 + HOST_CAPACITY * 2)
        memory = SharedMemory(ctypes.addressof(self.buffer), len(self.buffer), Handle(None))
        self.channel = HostChannel(memory, 0, lambda: memory_limit)
        self.header = (ctypes.c_int32 * HOST_HEADER).from_address(ctypes.addressof(self.buffer))
        self.text = ctypes.addressof(self.buffer) + HOST_HEADER * 4

    def call(self, request: str) -> Any:
        data = request.encode("utf-16-le")
        n = len(data) // 2
        for start in range(0, max(n, 1), HOST_CAPACITY):
            piece = data[2 * start : 2 * (start + HOST_CAPACITY)]
            ctypes.memmove(self.text, piece, len(piece))
            self.header[0] = 0 if start == 0 else 2
            self.header[1] = len(piece) // 2
            self.header[2] = 1 if start + HOST_CAPACITY < n else 0
            self.channel.on_call()
        total = self.header[3]
        answer = ctypes.string_at(self.text, 2 * self.header[1]).decode("utf-16-le")
        while len(answer) < total:
            self.header[0], self.header[4] = 1, len(answer)
            self.channel.on_call()
            answer += ctypes.string_at(self.text, 2 * self.header[1]).decode("utf-16-le")
        return json.loads(answer)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_a_call_in_pieces_both_ways() -> None:
    region = Region()
    big = bytes(range(256)) * 1000  # 256 KB: several pieces of request and of answer
    answer = region.call(json.dumps(["zlib", ["deflate", b64(big), {}]]))
    back = region.call(json.dumps(["zlib", ["inflate", answer["v"], {}]]))
    assert base64.b64decode(back["v"]) == big
    assert region.channel.calls == 2


def test_an_interrupted_call_leaves_nothing_for_the_next() -> None:
    region = Region()
    region.header[0], region.header[1], region.header[2] = 0, 3, 1  # a first piece, then JS stopped
    ctypes.memmove(region.text, "[[[".encode("utf-16-le"), 6)
    region.channel.on_call()
    assert region.call(json.dumps(["hash", ["md5", ""]])) == {"v": "1B2M2Y8AsgTpgAmY7PhCfg=="}


def test_bad_requests_answer_errors() -> None:
    region = Region()
    assert region.call("not json")["t"] == "TypeError"
    assert region.call(json.dumps({"op": "hash"}))["e"] == "a host call is [op, args]"
    assert region.call(json.dumps(["__import__", []]))["e"] == "no host operation '__import__'"
    assert region.call(json.dumps(["hash", ["md5", 5]]))["c"] == "ERR_INVALID_ARG_TYPE"


def test_a_request_over_half_the_memory_limit_is_refused_as_memory() -> None:
    region = Region(memory_limit=256 << 10)
    answer = region.call(json.dumps(["hash", ["md5", b64(bytes(200 << 10))]]))
    assert answer["t"] == "memory" and "more than a host call may carry" in answer["e"]
    assert region.call(json.dumps(["hash", ["md5", ""]]))["v"] == "1B2M2Y8AsgTpgAmY7PhCfg=="


def op(name: str, *args: Any, budget: int = 1 << 20) -> Any:
    operation = op_named(name)
    assert operation is not None
    return operation(list(args), budget)


@pytest.mark.parametrize(
    ("name", "args", "kind"),
    [
        ("source", ["../host"], "TypeError"),
        ("source", ["codec.js"], "TypeError"),
        ("hash", ["md4", ""], "Error"),
        ("hash", ["sha256", "@@"], "TypeError"),
        ("random", [True], "TypeError"),
        ("random", [2**40], "RangeError"),
        ("pbkdf2", ["", "", 10**9, 64, "sha512"], "RangeError"),
        ("scrypt", ["", "", 64, 2**20, 8, 1], "RangeError"),
        ("scrypt", ["", "", 64, 1000, 8, 1], "RangeError"),
        ("zlib", ["explode", "", {}], "TypeError"),
        ("zlib", ["gzip", "", {"level": 99}], "RangeError"),
        ("cipher", ["aes-256-cbc", b64(bytes(16)), b64(bytes(16)), ""], "RangeError"),
        ("cipher", ["des-ede3", "", "", ""], "TypeError"),
        ("keyImport", ["public", "pem", "x" * 10], "Error"),
        ("keyImport", ["public", "jwk", {"kty": "RSA", "n": 5}], "TypeError"),
        ("urlSet", ["http://a/", "origin", "x"], "TypeError"),
    ],
)
def test_ops_check_what_they_are_handed(name: str, args: list[Any], kind: str) -> None:
    with pytest.raises(HostError) as info:
        op(name, *args)
    assert info.value.kind == kind


def test_decompression_stops_at_the_budget() -> None:
    bomb = b64(zlib.compress(bytes(64 << 20)))
    with pytest.raises(HostError) as info:
        op("zlib", "inflate", bomb, {}, budget=1 << 20)
    assert info.value.code == "ERR_BUFFER_TOO_LARGE"
    with pytest.raises(HostError):
        op("zlib", "inflate", b64(zlib.compress(bytes(4096))), {"maxOutputLength": 100})


def test_answers_are_plain_data() -> None:
    assert op("urlParse", "https://Bücher.example/a b") == [
        "https://xn--bcher-kva.example/a%20b",
        "https:",
        "",
        "",
        "xn--bcher-kva.example",
        "xn--bcher-kva.example",
        "",
        "/a%20b",
        "",
        "",
        "https://xn--bcher-kva.example",
    ]
    assert op("urlParse", "not a url") is None
    assert isinstance(op("randomInt", 0, 10), int)
    assert isinstance(op("clock"), int)
    assert op("domain", "español.com", True) == "xn--espaol-zwa.com"
    assert host_module.MAX_HOST_TEXT == 8 * 2**20
