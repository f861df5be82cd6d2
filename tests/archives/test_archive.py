import gzip
import io
import lzma
import random
import stat
import tarfile
import tracemalloc
import warnings
import zipfile
import zlib

import pytest

from fnbox.archives import archive as archives
from fnbox.archives.archive import ArchiveLimits, merge_functions, read_archive, write_archive
from fnbox.sandboxes.errors import InvalidRequest

MiB = 1024 * 1024
PARAMETERS = "parameters:\n  name: {type: string}\n"
FUNCTIONS = {"greet.js": "return 'hi ' + name;", "greet.yaml": PARAMETERS, "add.py": "return 1 + 1\n"}
SEED = {"function.py": "return 'hello ' + name\n", "function.yaml": PARAMETERS}
DOCUMENT = {"functions": {"hello": {"language": "python", "code": "return 1\n"}}, "owner": "team-a"}
DOCUMENT_YAML = 'functions:\n  hello: {language: python, code: "return 1\\n"}\nowner: team-a\n'


def tar(*entries, mode="w"):
    """A tar from (name, content) pairs and ready-made TarInfo entries (links, fifos...)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                archive.addfile(entry)
                continue
            name, content = entry
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zip_(*entries, compression=zipfile.ZIP_DEFLATED):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names, on purpose
        with zipfile.ZipFile(buffer, "w", compression) as archive:
            for name, content in entries:
                archive.writestr(name, content)
    return buffer.getvalue()


def gz(content, name=None):
    buffer = io.BytesIO()
    with gzip.GzipFile(filename=name or "", mode="wb", fileobj=buffer, mtime=0) as file:
        file.write(content.encode() if isinstance(content, str) else content)
    return buffer.getvalue()


def damaged(data, at):
    return data[:at] + bytes([data[at] ^ 0x55]) + data[at + 1 :]


def special(name, kind, **fields):
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info


BUILDERS = {
    "zip": lambda files: zip_(*files.items()),
    "tar": lambda files: tar(*files.items()),
    "tar.gz": lambda files: tar(*files.items(), mode="w:gz"),
    "tar.xz": lambda files: tar(*files.items(), mode="w:xz"),
}


def refused(data, match, **options):
    with pytest.raises(InvalidRequest, match=match) as caught:
        read_archive(data, **options)
    return caught.value


def test_the_public_surface():
    assert archives.__all__ == ["ArchiveContents", "ArchiveLimits", "merge_functions", "read_archive", "write_archive"]
    assert ArchiveLimits() == ArchiveLimits(max_files=1000, max_file_size=MiB, max_total_size=16 * MiB, max_ratio=200)


# --- what an archive may hold ------------------------------------------------------------


@pytest.mark.parametrize("container", BUILDERS)
def test_a_workspace_yaml_is_the_whole_document(container):
    contents = read_archive(BUILDERS[container]({"workspace.yaml": DOCUMENT_YAML}))
    assert (contents.kind, contents.format, contents.functions) == ("workspace", container, {})
    assert contents.document == DOCUMENT


@pytest.mark.parametrize("container", BUILDERS)
def test_one_source_file_per_function_with_its_yaml_fields(container):
    contents = read_archive(BUILDERS[container](FUNCTIONS))
    assert (contents.kind, contents.format, contents.document) == ("functions", container, None)
    assert contents.functions == {
        "greet": {"language": "javascript", "parameters": {"name": {"type": "string"}}, "code": "return 'hi ' + name;"},
        "add": {"language": "python", "code": "return 1 + 1\n"},
    }


@pytest.mark.parametrize("container", BUILDERS)
def test_the_seed_000_function_py_is_named_after_the_file(container):
    contents = read_archive(BUILDERS[container](SEED), filename="greet." + container)
    assert contents.functions == {
        "greet": {"language": "python", "parameters": {"name": {"type": "string"}}, "code": SEED["function.py"]}
    }


def test_a_plain_gzip_holds_one_file_named_in_its_header_or_function_py():
    contents = read_archive(gz("return 1\n", name="function.py"), filename="greet.gz")
    assert (contents.format, contents.functions) == ("gz", {"greet": {"language": "python", "code": "return 1\n"}})
    assert read_archive(gz("return 1\n"), filename="greet.gz").functions == contents.functions
    named = read_archive(gz("return 2;", name="double.js"))
    assert named.functions == {"double": {"language": "javascript", "code": "return 2;"}}


def test_xz_streams_may_follow_one_another():
    data = tar(("a.py", "return 1\n"), ("b.py", "return 2\n"))
    split = lzma.compress(data[:700]) + lzma.compress(data[700:]) + b"\0" * 4
    assert list(read_archive(split).functions) == ["a", "b"]


def test_the_format_comes_from_the_content_not_the_name():
    contents = read_archive(tar(("function.js", "return 1;"), mode="w:gz"), filename="greet.zip")
    assert (contents.format, list(contents.functions)) == ("tar.gz", ["greet"])


@pytest.mark.parametrize(
    "filename, name",
    [
        ("greet.tar.gz", "greet"),
        ("greet.tgz", "greet"),
        ("greet.zip", "greet"),
        ("greet.tar.xz", "greet"),
        ("greet.gz", "greet"),
        ("greet.tar", "greet"),
        ("Greet.TGZ", "Greet"),
        ("C:\\uploads\\greet.zip", "greet"),
        ("greet", "greet"),
    ],
)
def test_seed_names_lose_their_archive_suffix(filename, name):
    assert list(read_archive(zip_(("function.js", "return 1;")), filename=filename).functions) == [name]


def test_the_function_argument_names_a_seed_function_and_nothing_else():
    assert list(read_archive(zip_(("function.js", "return 1;")), filename="a.zip", function="b").functions) == ["b"]
    refused(zip_(("function.js", "return 1;")), r"\?function=NAME")
    refused(zip_(("x.js", "return 1;")), "function.js archive, not NAME.js / NAME.py files", function="b")
    refused(zip_(("workspace.yaml", "{}")), "function.js archive, not workspace.yaml", function="b")


def test_a_seed_name_that_is_no_function_name_says_how_to_choose_one():
    seed = zip_(("function.js", "return 1;"))
    error = refused(seed, r"'greet-v2'.*greet-v2.zip; pass \?function=NAME to choose a name", filename="greet-v2.zip")
    assert error.details == {"function": "greet-v2"}


def test_one_common_top_folder_and_desktop_noise_are_left_out():
    data = tar(
        special("greet", tarfile.DIRTYPE),
        ("./greet/function.py", "return 1\n"),
        ("greet/.DS_Store", b"\0\1"),
        ("greet/._function.py", b"\0\1"),
        ("__MACOSX/greet/._function.py", b"\0\1"),
        mode="w:gz",
    )
    assert read_archive(data, function="greet").functions == {"greet": {"language": "python", "code": "return 1\n"}}
    folder = zip_(("greet/", ""), ("greet/a.js", "return 1;"))
    assert read_archive(folder).functions == {"a": {"language": "javascript", "code": "return 1;"}}


def test_workspace_json_and_yml_are_documents_too():
    assert read_archive(zip_(("workspace.json", '{"functions": {}}'))).document == {"functions": {}}
    assert read_archive(zip_(("workspace.yml", ""))).document == {}


def test_yaml_aliases_are_fine_until_they_explode():
    small = "p: &p {type: string}\nfunctions:\n  a: {code: '', parameters: {x: *p, y: *p}}\n"
    parameters = read_archive(zip_(("workspace.yaml", small))).document["functions"]["a"]["parameters"]
    assert parameters["y"] == {"type": "string"}
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{b}: &{b} [{', '.join(['*' + a] * 10)}]\n" for a, b in zip("abcdefgh", "bcdefghi")
    )
    refused(zip_(("workspace.yaml", laughs)), "aliases expand too far")


def test_merge_functions_adds_and_replaces_and_keeps_the_rest():
    document = {"functions": {"a": {"code": "1"}, "b": {"code": "2"}}, "owner": "x"}
    merged = merge_functions(document, {"b": {"code": "3"}, "c": {"code": "4"}})
    assert merged == {"functions": {"a": {"code": "1"}, "b": {"code": "3"}, "c": {"code": "4"}}, "owner": "x"}
    assert document["functions"]["b"] == {"code": "2"}
    assert merge_functions(None, {"c": {"code": "4"}}) == {"functions": {"c": {"code": "4"}}}


def test_apply_replaces_with_a_workspace_and_merges_functions():
    existing = {"functions": {"old": {"code": "1"}}}
    assert read_archive(zip_(("workspace.yaml", "functions: {}"))).apply(existing) == {"functions": {}}
    assert list(read_archive(zip_(("fresh.js", "return 1;"))).apply(existing)["functions"]) == ["old", "fresh"]


# --- export ------------------------------------------------------------------------------


def test_export_imports_back_to_the_same_document_and_the_same_bytes():
    tricky = [
        "  indented\n",
        "tab\tand trailing  \n",
        "no newline",
        "\n\nblank",
        "end\n\n\n",
        "crlf\r\n",
        "é ✓ 🙂\n",
        "",
    ]
    tricky += ["nel\x85", "ls\u2028ps\u2029\n", "bom\ufeff\n", "nul\0\n"]
    document = {
        "functions": {f"f{i}": {"language": "python", "code": code, "timeout": 5} for i, code in enumerate(tricky)},
        "owner": {"name": "team", "tags": ["a", "b"]},
    }
    document["shared"] = document["owner"]  # shared objects are written out, not as aliases
    data = write_archive(document)
    contents = read_archive(data)
    assert (contents.kind, contents.format, contents.document) == ("workspace", "tar.gz", document)
    assert write_archive(document) == data
    assert write_archive(contents.document) == data


def test_the_export_is_a_plain_tar_gz_of_workspace_yaml():
    with tarfile.open(fileobj=io.BytesIO(write_archive(DOCUMENT)), mode="r:gz") as archive:
        (member,) = archive.getmembers()
        assert (member.name, member.mode, member.mtime, member.uid, member.gid) == ("workspace.yaml", 0o644, 0, 0, 0)
        assert "code: |\n" in archive.extractfile(member).read().decode()


# --- layouts that are refused -------------------------------------------------------------


@pytest.mark.parametrize(
    "files, match",
    [
        ({"workspace.yaml": "functions: {}", "x.py": ""}, r"workspace.yaml holds the whole workspace.*\(x.py\)"),
        ({"workspace.yaml": "{}", "workspace.json": "{}"}, "holds the whole workspace"),
        ({"function.py": "", "other.py": ""}, "remove other"),
        ({"x.py": "", "README.md": ""}, r"^unknown file type: README.md; an archive holds workspace.yaml, or NAME.js"),
        ({"inner.zip": zip_(("x.py", ""))}, "unknown file type: inner.zip"),
        ({"x.yaml": "timeout: 1"}, "x.yaml has no x.js or x.py beside it"),
        ({"x.js": "", "x.py": ""}, "function 'x' comes twice: x.js and x.py"),
        ({"x.py": "", "lib/util.py": ""}, "subfolder: lib/util.py"),
        ({"x.py": "", "x.yaml": "code: 'return 2'"}, "x.yaml: remove 'code'"),
        ({"x.py": "", "x.yaml": "language: python"}, "x.yaml: remove 'language'"),
        ({"x.py": "", "x.yaml": "timeout: -1"}, "'timeout' must be a positive number"),
        ({"my-fn.js": ""}, "invalid function name 'my-fn'"),
        ({"class.js": ""}, "'class' is reserved"),
        ({"x.py": b"return '\xe9'"}, r"x.py is not UTF-8 text \(invalid byte at offset 8\)"),
        ({"workspace.yaml": "- a\n- b\n"}, "workspace.yaml must hold a mapping of keys to values, not a list"),
        ({"workspace.yaml": "functions: {a: [}\n"}, "workspace.yaml is not valid YAML"),
        ({"workspace.json": "{'a': 1}"}, "workspace.json is not valid JSON"),
        ({"x.py": "", "x.yaml": "[1]"}, "x.yaml must hold a mapping"),
    ],
)
def test_bad_layouts_are_refused_naming_the_file(files, match):
    refused(zip_(*files.items()), match)


@pytest.mark.parametrize(
    "data",
    [zip_(), tar(), tar(mode="w:gz"), zip_(("d/", ""), (".DS_Store", ""))],
    ids=["zip", "tar", "tar.gz", "zip-of-a-folder-and-dotfile"],
)
def test_an_empty_archive_is_refused(data):
    refused(data, "the archive is empty")


# --- hostile archives ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, match",
    [
        ("../x.py", "leading out of the archive"),
        ("greet/../../x.py", "leading out of the archive"),
        ("/etc/x.py", "absolute path"),
        ("C:/x.py", "Windows-style path"),
        ("a\\x.py", "Windows-style path"),
        ("x" * 1025, "longer than 1024"),
    ],
)
@pytest.mark.parametrize("container", ["zip", "tar.gz"])
def test_unsafe_paths_are_refused(container, name, match):
    error = refused(BUILDERS[container]({name: "return 1", "ok.py": ""}), match)
    assert error.details["file"] == name[:1024]


def test_nul_bytes_in_names_are_refused():
    data = zip_(("x.pyZ.txt", "")).replace(b"x.pyZ.txt", b"x.py\0.txt")
    refused(data, "NUL byte")
    info = tarfile.TarInfo("x.py")
    info.pax_headers = {"path": "x.py\0.txt"}
    refused(tar(info, mode="w:gz"), "NUL byte")


@pytest.mark.parametrize(
    "entry, match",
    [
        (special("x.py", tarfile.SYMTYPE, linkname="/etc/passwd"), "links are not allowed"),
        (special("x.py", tarfile.LNKTYPE, linkname="ok.py"), "links are not allowed"),
        (special("x.py", tarfile.FIFOTYPE), "not devices or fifos"),
        (special("x.py", tarfile.CHRTYPE, devmajor=1, devminor=3), "not devices or fifos"),
        (special("x.py", tarfile.BLKTYPE, devmajor=8), "not devices or fifos"),
    ],
)
def test_links_and_special_files_in_a_tar_are_refused(entry, match):
    refused(tar(("ok.py", ""), entry), match)


@pytest.mark.parametrize(
    "mode, match", [(stat.S_IFLNK | 0o777, "links are not allowed"), (stat.S_IFIFO | 0o644, "only regular files")]
)
def test_links_and_special_files_in_a_zip_are_refused(mode, match):
    info = zipfile.ZipInfo("x.py")
    info.external_attr = mode << 16
    refused(zip_((info, "/etc/passwd")), match)


@pytest.mark.parametrize("container", ["zip", "tar"])
@pytest.mark.parametrize(
    "first, second, match",
    [
        ("x.py", "x.py", r"duplicate name in the archive: x.py$"),
        ("X.py", "x.py", r"x.py \(and X.py: names may not differ in letter case only\)"),
        ("d/x.py", "./d//x.py", r"duplicate name in the archive: d/x.py$"),
    ],
)
def test_duplicate_names_are_refused(container, first, second, match):
    builder = zip_ if container == "zip" else tar
    refused(builder((first, "return 1"), (second, "return 2")), match)


def test_encrypted_zip_entries_are_refused():
    data = bytearray(zip_(("x.py", "return 1")))
    for magic, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        data[data.index(magic) + flags_at] |= 0x1
    refused(bytes(data), "encrypted")


def test_zip_entries_must_be_deflated_or_stored():
    refused(zip_(("x.py", "return 1"), compression=zipfile.ZIP_BZIP2), "use deflate or no compression")
    assert read_archive(zip_(("x.py", "return 1"), compression=zipfile.ZIP_STORED)).functions["x"]["code"] == "return 1"


@pytest.mark.parametrize("container", ["zip", "tar", "tar.gz"])
def test_too_many_entries_are_refused(container):
    files = {f"f{i}.py": "" for i in range(4)}
    error = refused(BUILDERS[container](files), "more than 3 entries", limits=ArchiveLimits(max_files=3))
    assert error.details == {"limit": "max_files", "max": 3}


@pytest.mark.parametrize("container", BUILDERS)
def test_one_file_over_the_size_cap_is_refused(container):
    noise = random.Random(0).randbytes(MiB + 1)  # incompressible: no ratio to trip first
    error = refused(BUILDERS[container]({"x.py": noise}), "x.py is larger than 1 MiB")
    assert error.details == {"file": "x.py", "limit": "max_file_size", "max": MiB}


def test_a_workspace_yaml_is_only_capped_by_the_total_size():
    big = "functions: {}\nnote: '" + "#" * (2 * MiB) + "'\n"
    assert read_archive(tar(("workspace.yaml", big))).document["note"] == "#" * (2 * MiB)


@pytest.mark.parametrize("container", BUILDERS)
def test_the_total_size_is_capped(container):
    files = {f"f{i}.py": b"#" * 400 for i in range(3)}
    error = refused(BUILDERS[container](files), "expands past 1000 bytes", limits=ArchiveLimits(max_total_size=1000))
    assert error.details["limit"] == "max_total_size"


ROOMY = ArchiveLimits(max_file_size=64 * MiB, max_total_size=64 * MiB)


@pytest.mark.parametrize("container", ["zip", "tar.gz", "tar.xz"])
def test_a_compression_ratio_bomb_is_refused(container):
    error = refused(BUILDERS[container]({"x.py": b"\0" * (8 * MiB)}), "more than 200 times its size", limits=ROOMY)
    assert {"limit": "max_ratio", "max": 200}.items() <= error.details.items()  # a zip also names the entry


GiB = 1024 * MiB


def gzip_bomb(header):
    """`header`, then 10 GiB of zeros, gzipped as many members: 10 MB, and quick to make."""
    member = gzip.compress(b"\0" * (16 * MiB), mtime=0)
    return gzip.compress(header, mtime=0) + member * (10 * GiB // (16 * MiB))


@pytest.mark.parametrize(
    "header, match",
    [
        (special("x.py", tarfile.REGTYPE, size=10 * GiB).tobuf(tarfile.GNU_FORMAT), "x.py is larger than 1 MiB"),
        # tarfile reads a pax header whole, so a huge one must stop at the cap too
        (special("p", tarfile.XHDTYPE, size=10 * GiB).tobuf(tarfile.GNU_FORMAT), "expands past 16 MiB"),
        (b"#" * 512, "function.py is larger than 1 MiB"),  # a plain gzip of one file
    ],
)
def test_a_10_gib_gzip_bomb_is_refused_in_little_memory(header, match):
    data = gzip_bomb(header)
    tracemalloc.start()
    try:
        refused(data, match, filename="x.tar.gz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * MiB


@pytest.mark.parametrize(
    "data",
    [
        b"PK\x03\x04" + b"garbage" * 10,
        b"\x1f\x8b" + b"garbage" * 10,
        b"\xfd7zXZ\x00" + b"garbage" * 10,
        damaged(tar(("x.py", "return 1"), mode="w:gz"), 30),
        damaged(tar(("x.py", "return 1"), mode="w:xz"), 40),
        damaged(zip_(("x.py", "return 1" * 50)), 40),  # inside the deflate stream
        damaged(zip_(("x.py", "return 1"), compression=zipfile.ZIP_STORED), 38),  # its CRC fails
    ],
)
def test_corrupt_archives_are_refused(data):
    refused(data, "corrupt or truncated")


def test_an_xz_asking_for_a_huge_dictionary_is_refused():
    data = bytearray(tar(("x.py", "return 1"), mode="w:xz"))
    size = (data[12] + 1) * 4  # the first block header, after the 12-byte stream header
    data[data.index(b"\x21\x01", 12) + 2] = 38  # LZMA2 dictionary: 2 GiB
    data[12 + size - 4 : 12 + size] = zlib.crc32(data[12 : 12 + size - 4]).to_bytes(4, "little")
    refused(bytes(data), "xz archive: Memory usage limit exceeded")


def test_a_damaged_tar_header_after_the_first_is_not_an_early_end():
    data = bytearray(tar(("a.py", "return 1"), ("b.py", "return 2")))
    data[1024 + 148 : 1024 + 156] = b"9999999\0"  # b.py's checksum
    refused(bytes(data), "damaged header")


@pytest.mark.parametrize("container", BUILDERS)
def test_random_damage_gives_a_result_or_invalid_request_never_another_error(container):
    rng = random.Random(container)
    original = BUILDERS[container](FUNCTIONS)
    for _ in range(100):
        data = bytearray(original)
        for _ in range(rng.choice([1, 2, 8])):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            read_archive(bytes(data))
        except InvalidRequest:
            pass


@pytest.mark.parametrize("container", BUILDERS)
def test_truncated_archives_are_refused(container):
    data = BUILDERS[container]({"x.py": bytes(range(256)) * 40, "y.py": ""})
    refused(data[: len(data) // 3], "corrupt or truncated")


@pytest.mark.parametrize("data", [b"", b"hello", b"\x89PNG\r\n\x1a\n" + b"\0" * 600, b"functions: {}"])
def test_what_is_not_an_archive_is_refused(data):
    refused(data, r"^not an archive: expected zip, tar, tar.gz or tar.xz$")


def test_a_zip_entry_expanding_a_thousand_times_is_refused_even_when_small():
    error = refused(zip_(("x.py", b"\0" * (512 * 1024))), "more than 200 times its size")
    assert error.details["limit"] == "max_ratio"


def test_a_zip_entry_bomb_is_refused_even_behind_incompressible_entries():
    noise = random.Random(1).randbytes(900 * 1024)
    archive = zip_(("noise.txt", noise), ("x.py", b"\0" * (900 * 1024)))
    assert len(archive) * 2 > 900 * 1024  # the archive as a whole stays far under 200:1
    error = refused(archive, "x.py expands more than 200 times its size")
    assert error.details == {"file": "x.py", "limit": "max_ratio", "max": 200}


def test_a_zip_of_ordinary_sources_is_imported():
    source = "".join(f"return_{i} = {i} * 2  # line {i}\n" for i in range(2000))
    assert read_archive(zip_(("x.py", source))).functions["x"]["code"] == source
