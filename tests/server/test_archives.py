"""PUT and GET /v2/functions/{ws}/archive: imports as raw bodies and multipart uploads, exports."""

import gzip
import io
import tarfile

import pytest
import yaml

from tests.archives.test_archive import BUILDERS, special, tar, zip_

PARAMETERS = "parameters:\n  name: {type: string}\n"
FUNCTIONS = {
    "greet.js": "return 'hi ' + name;",
    "greet.yaml": PARAMETERS,
    "add.py": "return a + 1\n",
    "add.yaml": "parameters:\n  a: {type: integer}\n",
}
SEED = {"function.py": "return 'hello ' + name\n", "function.yaml": PARAMETERS}
DOCUMENT = {"functions": {"hello": {"language": "python", "code": "return 'hello'\n"}}, "owner": "team-a"}
EXISTING = {
    "functions": {
        "keep": {"code": "return 'kept';"},
        "greet": {"code": "return 'old greet';"},
    }
}


def put(client, data, workspace="w", **options):
    return client.put(f"/v2/functions/{workspace}/archive", content=data, **options)


def upload(client, data, filename, workspace="w", **options):
    return client.put(f"/v2/functions/{workspace}/archive", files={"archive": (filename, data)}, **options)


def run(client, function, workspace="w", **parameters):
    return client.post(f"/v2/functions/{workspace}/run/{function}", json={"parameters": parameters}).json()


def stored(client, workspace="w"):
    answer = client.get(f"/v2/functions/{workspace}")
    return answer.status_code, answer.json(), answer.headers.get("etag")


@pytest.mark.parametrize("container", BUILDERS)
def test_a_raw_body_is_read_from_its_content_whatever_its_content_type(client, container):
    answer = put(client, BUILDERS[container](FUNCTIONS), headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert sorted(answer.json()["functions"]) == ["add", "greet"] and answer.headers["etag"]
    assert run(client, "greet", name="Ada")["result"] == "hi Ada"
    assert run(client, "add", a=41)["result"] == 42


@pytest.mark.parametrize("container", BUILDERS)
def test_a_multipart_upload_in_each_format(client, container):
    answer = upload(client, BUILDERS[container](FUNCTIONS), f"functions.{container}")
    assert answer.status_code == 200, answer.text
    assert run(client, "greet", name="Bo")["result"] == "hi Bo"


def test_a_seed_function_py_is_named_after_the_uploaded_file(client):
    data = BUILDERS["tar.gz"](SEED)
    assert sorted(upload(client, data, "greet.tar.gz").json()["functions"]) == ["greet"]
    raw = put(client, data, headers={"Content-Disposition": 'attachment; filename="wave.tgz"'})
    assert sorted(raw.json()["functions"]) == ["greet", "wave"]
    assert run(client, "wave", name="you")["result"] == "hello you"


def test_the_function_query_parameter_or_form_field_wins_over_the_file_name(client):
    data = BUILDERS["zip"](SEED)
    assert list(upload(client, data, "greet.zip", params={"function": "hi"}).json()["functions"]) == ["hi"]
    assert list(put(client, data, workspace="raw", params={"function": "hey"}).json()["functions"]) == ["hey"]
    form = client.put("/v2/functions/form/archive", files={"archive": ("greet.zip", data)}, data={"function": "field"})
    assert list(form.json()["functions"]) == ["field"]


def test_a_seed_function_without_a_name_says_how_to_give_one(client):
    answer = put(client, BUILDERS["tar"](SEED))
    assert answer.status_code == 400 and "?function=NAME" in answer.json()["message"]


def test_function_files_add_to_the_workspace_and_replace_their_own(client):
    client.put("/v2/functions/w", json=EXISTING)
    _, _, before = stored(client)
    answer = put(client, BUILDERS["tar.gz"](FUNCTIONS))
    assert sorted(answer.json()["functions"]) == ["add", "greet", "keep"]
    assert answer.headers["etag"] != before
    assert run(client, "keep")["result"] == "kept"
    assert run(client, "greet", name="new")["result"] == "hi new"
    assert stored(client)[1] == answer.json()


def test_a_workspace_yaml_replaces_the_workspace(client):
    client.put("/v2/functions/w", json=EXISTING)
    answer = put(client, BUILDERS["zip"]({"workspace.yaml": yaml.safe_dump(DOCUMENT)}))
    assert answer.json() == DOCUMENT and stored(client)[1] == DOCUMENT
    assert run(client, "keep")["error"] == "NotFound"
    assert run(client, "hello")["result"] == "hello"


def test_a_compile_error_is_refused_like_a_json_save_and_the_old_version_keeps_serving(client):
    client.put("/v2/functions/w", json=EXISTING)
    before = stored(client)
    answer = put(client, BUILDERS["tar.gz"]({"broken.js": "let x = ;", "greet.js": "return 'new';"}))
    assert answer.status_code == 400
    assert answer.json()["error"] == "CompilationError" and answer.json()["details"]["function"] == "broken"
    assert stored(client) == before
    assert run(client, "greet")["result"] == "old greet"


def _link(kind):
    return special("evil.py", kind, linkname="/etc/passwd")


HOSTILE = {
    "traversal": tar(("../evil.py", "return 1\n")),
    "absolute path": tar(("/tmp/evil.py", "return 1\n")),
    "zip traversal": zip_(("a/../../evil.py", "return 1\n")),
    "symlink": tar(_link(tarfile.SYMTYPE)),
    "hard link": tar(_link(tarfile.LNKTYPE)),
    "bomb": zip_(("workspace.yaml", b"#" * (8 * 1024 * 1024))),
    "file bomb": tar(("big.py", b"#" * (2 * 1024 * 1024)), mode="w:gz"),
    "duplicates": zip_(("a.py", "return 1\n"), ("a.py", "return 2\n")),
    "same function twice": tar(("a.py", "return 1\n"), ("a.js", "return 2;")),
    "unknown file type": tar(("a.py", "return 1\n"), ("a.exe", "MZ")),
    "corrupt": BUILDERS["tar.gz"](FUNCTIONS)[:60],
    "not an archive": b"just some text, not an archive",
    "lone surrogate in JSON": tar(("workspace.json", rb'{"functions": {"f": {"code": "return \"\ud800\";"}}}')),
    "lone surrogate in YAML": tar(("workspace.yaml", b'functions:\n  f: {code: "return \\"\\udc00\\";"}\n')),
    "lone surrogate in NAME.yaml": tar(("a.py", "return x\n"), ("a.yaml", b'description: "\\ud800"\n')),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_archive_is_refused_and_changes_nothing(client, tmp_path, name):
    client.put("/v2/functions/w", json=EXISTING)
    before = stored(client)
    files_before = sorted(path for path in tmp_path.rglob("*") if "executions" not in path.name)
    for answer in (put(client, HOSTILE[name]), upload(client, HOSTILE[name], "evil.tar")):
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "InvalidRequest" and answer.json()["message"]
    assert stored(client) == before
    assert sorted(path for path in tmp_path.rglob("*") if "executions" not in path.name) == files_before
    assert not (tmp_path.parent / "evil.py").exists()


def test_an_empty_body_or_an_upload_without_the_archive_field_says_what_to_send(client):
    for answer in (put(client, b""), client.put("/v2/functions/w/archive", files={"file": ("a.tar", b"x")})):
        assert answer.status_code == 400 and "-F archive=@" in answer.json()["message"]


def test_an_invalid_workspace_name_is_refused(client):
    answer = put(client, BUILDERS["tar"](FUNCTIONS), workspace="-bad")
    assert answer.status_code == 400 and "invalid workspace name" in answer.json()["message"]


def test_export_is_a_tar_gz_attachment_that_imports_back_to_the_same_document(client):
    client.put("/v2/functions/w", json={**EXISTING, "owner": "team-a"})
    status, document, etag = stored(client)
    answer = client.get("/v2/functions/w/archive")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/gzip"
    assert answer.headers["content-disposition"] == 'attachment; filename="w.tar.gz"'
    assert answer.headers["etag"] == etag
    with tarfile.open(fileobj=io.BytesIO(answer.content)) as archive:
        assert archive.getnames() == ["workspace.yaml"]
    assert gzip.decompress(answer.content)  # a plain gzip
    client.delete("/v2/functions/w")
    again = upload(client, answer.content, "w.tar.gz", workspace="w")
    assert again.json() == document and again.headers["etag"] == etag
    assert client.get("/v2/functions/w/archive").content == answer.content


def test_export_of_a_missing_workspace_is_not_found(client):
    assert client.get("/v2/functions/nope/archive").json()["error"] == "NotFound"


def test_a_body_over_request_max_size_is_refused_raw_chunked_and_multipart(make_client):
    client = make_client(REQUEST_MAX_SIZE="4kb")
    client.put("/v2/functions/w", json=EXISTING)
    before = stored(client)
    big = tar(("big.py", "# padding\n" * 1000), mode="w")  # ~20 KB, under every archive cap

    def chunks():
        yield big[:3000]
        yield big[3000:]

    boundary = "fnbox-test-boundary"
    form = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="archive"; filename="big.tar"\r\n\r\n'.encode()
        + big
        + f"\r\n--{boundary}--\r\n".encode()
    )

    def form_chunks():  # no Content-Length: only counting the bytes can stop it
        yield form[:3000]
        yield form[3000:]

    multipart = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    answers = [
        put(client, big),
        put(client, chunks()),
        upload(client, big, "big.tar"),
        put(client, form_chunks(), headers=multipart),
    ]
    for answer in answers:
        assert answer.status_code == 413 and answer.json()["error"] == "PayloadTooLarge"
    assert stored(client) == before


def test_the_routes_are_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"put", "post", "get"} <= set(paths["/v2/functions/{workspace}/archive"])
