"""The folder commands of ``sealbox`` (mkdir, mv, ls, upload DIR, share create PATH...,
download LINK into a directory or as a ZIP) as a user runs them, against a real server."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sealbox.client import Client
from tests.client.test_cli import SEALBOX, _wait_for, env, sealbox, sign_in
from tests.integration.server import Installation, Server
from tests.proxy import Proxy


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(Installation(tmp_path_factory.mktemp("cli-tree"))).start()
    yield server
    server.stop()


@pytest.fixture
def home(tmp_path: Path, server: Server) -> Path:
    sign_in(tmp_path, server.url, "admin", server.admin_password or "")
    return tmp_path


@pytest.fixture
def sdk(server: Server) -> Iterator[Client]:
    with Client(server.url, backoff=0.01) as client:
        client.login("admin", server.admin_password or "")
        yield client


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, done.stderr
    return done


def remote(sdk: Client, path: str) -> dict[str, bytes | None]:
    """What a remote folder holds, by relative path: files' bytes, None for folders."""
    top = sdk.lookup(path)
    assert top is not None
    assert top.kind == "folder"
    found: dict[str, bytes | None] = {}
    queue = [("", top.id)]
    while queue:
        rel, folder_id = queue.pop()
        for item in sdk.folder_items(folder_id):
            sub = f"{rel}/{item.name}" if rel else item.name
            if item.kind == "folder":
                found[sub] = None
                queue.append((sub, item.id))
            else:
                sink = _Sink()
                sdk.download(item.id, sink)
                found[sub] = sink.data
    return found


class _Sink:
    def __init__(self) -> None:
        self.data = b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return len(self.data)

    def write(self, data: bytes) -> None:
        self.data += data


def local(root: Path) -> dict[str, bytes | None]:
    found: dict[str, bytes | None] = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        found[rel] = None if path.is_dir() else path.read_bytes()
    return found


def tree(root: Path, files: int, seed: int = 1, size: int = 3000) -> Path:
    """A small random tree: nested folders, empty files and an empty folder, non-ASCII names."""
    rng = random.Random(seed)
    folders = [root, root / "docs", root / "docs" / "2024 été", root / "photos", root / "photos" / "日本" / "京都"]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    (root / "empty folder").mkdir()
    for n in range(files):
        body = b"" if n % 7 == 0 else rng.randbytes(rng.randrange(1, size))
        (folders[n % len(folders)] / f"file {n} ñ.bin").write_bytes(body)
    return root


def test_mkdir_makes_parents_and_accepts_an_existing_folder(home: Path, sdk: Client) -> None:
    made = json.loads(ok(sealbox(home, "mkdir", "projects/2026/q1", "--json")).stdout)
    assert [m["path"] for m in made] == ["projects/2026/q1"]
    again = json.loads(ok(sealbox(home, "mkdir", "/projects/2026/q1/", "--json")).stdout)
    assert again[0]["id"] == made[0]["id"]  # like mkdir -p: nothing new
    assert [i.name for i in sdk.folder_items(sdk.make_path("projects/2026").id)] == ["q1"]  # type: ignore[union-attr]
    (home / "note.txt").write_bytes(b"a file")
    ok(sealbox(home, "upload", "note.txt", "--to", "projects"))
    onto_file = sealbox(home, "mkdir", "projects/note.txt/sub")
    assert (onto_file.returncode, onto_file.stderr.strip()) == (1, "error: projects/note.txt is a file, not a folder")
    top = sealbox(home, "mkdir", "/")
    assert (top.returncode, top.stderr.strip()) == (2, "error: the top exists already: name a folder")
    long = sealbox(home, "mkdir", "a" * 4097)
    assert (long.returncode, long.stderr.strip()) == (2, "error: a path is at most 4096 characters")
    empty_part = sealbox(home, "mkdir", "a//b")
    assert (empty_part.returncode, empty_part.stderr.strip()) == (2, "error: a path has no empty parts: 'a//b'")
    assert sdk.folder_items(sdk.lookup("projects").id)  # type: ignore[union-attr]
    with pytest.raises(Exception, match="nothing is at that path"):
        sdk.lookup("a")


def test_mv_moves_and_renames_files_and_folders(home: Path, sdk: Client) -> None:
    ok(sealbox(home, "mkdir", "mv/inbox", "mv/archive"))
    (home / "draft.txt").write_bytes(b"draft")
    (home / "other.txt").write_bytes(b"other")
    ok(sealbox(home, "upload", "draft.txt", "other.txt", "--to", "mv/inbox"))
    renamed = json.loads(ok(sealbox(home, "mv", "mv/inbox/draft.txt", "mv/inbox/final.txt", "--json")).stdout)
    assert renamed["to"] == "mv/inbox/final.txt"
    into = ok(sealbox(home, "mv", "mv/inbox/final.txt", "mv/archive"))
    assert into.stdout.strip() == "moved mv/inbox/final.txt to mv/archive/final.txt"
    ok(sealbox(home, "mv", "mv/archive", "mv/inbox/old"))  # a folder, moved and renamed at once
    assert remote(sdk, "mv") == {
        "inbox": None, "inbox/old": None, "inbox/old/final.txt": b"draft", "inbox/other.txt": b"other",
    }  # fmt: skip
    refusals = {
        ("mv/inbox", "mv/inbox/old"): (1, "error: a folder cannot be moved into itself or into a folder inside it"),
        ("mv/inbox/other.txt", "mv/inbox/old/final.txt"): (1, "error: mv/inbox/old/final.txt exists already"),
        ("mv/nothing", "mv/inbox"): (3, "error: nothing at mv/nothing"),
        ("mv/inbox/other.txt", "mv/none/x.txt"): (3, "error: nothing at mv/none"),
        ("mv/inbox/other.txt", "mv/inbox/other.txt/x"): (1, "error: mv/inbox/other.txt is a file, not a folder"),
        ("/", "mv"): (1, "error: the top cannot be moved"),
    }
    for (src, dest), expected in refusals.items():
        done = sealbox(home, "mv", src, dest)
        assert (done.returncode, done.stderr.strip()) == expected, (src, dest)
    assert remote(sdk, "mv") == {
        "inbox": None, "inbox/old": None, "inbox/old/final.txt": b"draft", "inbox/other.txt": b"other",
    }  # fmt: skip


def test_ls_lists_a_folder_with_a_header_sorted_and_filtered(home: Path) -> None:
    ok(sealbox(home, "mkdir", "ls/sub"))
    for name, size in (("b.txt", 30), ("a.txt", 10), ("c.log", 20)):
        (home / name).write_bytes(b"x" * size)
        ok(sealbox(home, "upload", name, "--to", "ls"))
    lines = ok(sealbox(home, "ls", "ls")).stdout.splitlines()
    assert lines[0] == "/ls  (1 folder, 3 files)"
    assert lines[1].split() == ["ID", "SIZE", "CREATED", "NAME"]
    assert [line.rsplit("  ", 1)[1] for line in lines[2:]] == ["sub/", "a.txt", "b.txt", "c.log"]
    by_size = json.loads(ok(sealbox(home, "ls", "/ls/", "--sort", "size", "--desc", "--json")).stdout)
    assert [item["name"] for item in by_size] == ["sub", "b.txt", "c.log", "a.txt"]
    filtered = json.loads(ok(sealbox(home, "ls", "ls", "--filter", "TXT", "--json")).stdout)
    assert [item["name"] for item in filtered] == ["a.txt", "b.txt"]
    assert "ls/" in ok(sealbox(home, "ls")).stdout.splitlines()[2:].__str__()
    every = json.loads(ok(sealbox(home, "ls", "--all", "--json")).stdout)
    assert {"a.txt", "b.txt", "c.log"} <= {item["name"] for item in every}
    refusals = {
        ("ls", "ls/a.txt"): (1, "error: ls/a.txt is a file, not a folder"),
        ("ls", "ls/none"): (3, "error: nothing at ls/none"),
        ("ls", "ls", "--filter", "x" * 256): (2, "error: --filter is at most 255 characters"),
        ("ls", "ls", "--all"): (2, "error: --all lists every file: give no PATH or --filter with it"),
    }
    for args, expected in refusals.items():
        done = sealbox(home, *args)
        assert (done.returncode, done.stderr.strip()) == expected, args
    bad_sort = sealbox(home, "ls", "--sort", "colour")
    assert bad_sort.returncode == 2


def test_upload_dir_keeps_the_tree_and_skips_what_is_there(home: Path, sdk: Client) -> None:
    source = tree(home / "Project", 40)
    (source / "photos" / "big.bin").write_bytes(os.urandom(9 << 20))  # over tus
    done = json.loads(ok(sealbox(home, "upload", "Project", "--to", "up", "--json")).stdout)
    assert (done[0]["kind"], done[0]["path"], done[0]["uploaded"], done[0]["skipped"]) == (
        "folder",
        "up/Project",
        41,
        0,
    )
    assert remote(sdk, "up/Project") == local(source)
    again = ok(sealbox(home, "upload", "Project", "--to", "up"))
    assert again.stdout.strip().endswith("0 files, 0 bytes (41 there already)")
    # A file changed since: its place holds another size; it is left alone, and said so.
    changed = source / "docs" / "file 1 ñ.bin"
    changed.write_bytes(b"longer than before" * 1000)
    clash = sealbox(home, "upload", "Project", "--to", "up")
    assert clash.returncode == 1
    assert clash.stderr.strip() == "error: 1 files left alone: another file is at their place (docs/file 1 ñ.bin)"
    assert remote(sdk, "up/Project")["docs/file 1 ñ.bin"] != changed.read_bytes()
    not_there = sealbox(home, "upload", "Nothing")
    assert not_there.returncode == 2


def test_upload_dir_killed_midway_resumes_without_sending_anything_twice(
    home: Path, sdk: Client, server: Server
) -> None:
    source = tree(home / "Batch", 300, seed=2, size=40_000)
    slow = Proxy(server.port, rate=1_000_000)  # about 6 s for the whole tree
    saved = home / "config" / "sealbox" / "profiles" / "default.json"
    profile = json.loads(saved.read_text())
    try:
        saved.write_text(json.dumps({**profile, "url": slow.url}))
        first = subprocess.Popen(
            [*SEALBOX, "upload", "Batch", "--to", "resume"], env=env(home), cwd=home, start_new_session=True
        )

        def stored() -> int:
            try:
                return len([v for v in remote_sizes(sdk, "resume/Batch").values() if v is not None])
            except Exception:
                return 0

        _wait_for(lambda: stored() >= 50)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    finally:
        slow.close()
        saved.write_text(json.dumps(profile))
    before = stored()
    assert 50 <= before < 300
    again = json.loads(ok(sealbox(home, "upload", "Batch", "--to", "resume", "--json")).stdout)[0]
    assert again["skipped"] >= before
    assert again["uploaded"] + again["skipped"] == 300
    assert remote(sdk, "resume/Batch") == local(source)  # nothing twice ("name (2)"), nothing missing


def remote_sizes(sdk: Client, path: str) -> dict[str, int | None]:
    top = sdk.lookup(path)
    assert top is not None
    found: dict[str, int | None] = {}
    queue = [("", top.id)]
    while queue:
        rel, folder_id = queue.pop()
        for item in sdk.folder_items(folder_id):
            sub = f"{rel}/{item.name}" if rel else item.name
            found[sub] = item.size
            if item.kind == "folder":
                queue.append((sub, item.id))
    return found


def test_a_folder_link_downloads_into_a_directory_resuming_file_by_file(home: Path, sdk: Client) -> None:
    source = tree(home / "Shared", 30, seed=3)
    ok(sealbox(home, "upload", "Shared", "--to", "links"))
    link = json.loads(ok(sealbox(home, "share", "create", "links/Shared", "--json")).stdout)
    assert link["kind"] == "folder"
    url = link["url"]
    got = ok(sealbox(home, "download", url, "out"))
    assert got.stdout.strip().startswith("out/  30 files")
    assert local(home / "out") == local(source)
    # Cut off: one file half there (in NAME.part), one missing; the rest complete.
    cut = home / "out" / "docs" / "file 1 ñ.bin"
    data = cut.read_bytes()
    cut.rename(cut.with_name(cut.name + ".part"))
    cut.with_name(cut.name + ".part").write_bytes(data[: len(data) // 2])
    (home / "out" / "photos" / "file 3 ñ.bin").unlink()
    again = json.loads(ok(sealbox(home, "download", url, "out", "--json")).stdout)
    assert (again["downloaded"], again["skipped"]) == (2, 28)
    assert local(home / "out") == local(source)
    # A file in the way with another size is left alone and said so.
    (home / "out" / "photos" / "file 3 ñ.bin").write_bytes(b"mine")
    clash = sealbox(home, "download", url, "out")
    assert (clash.returncode, clash.stderr.strip()) == (
        1,
        "error: 1 files left alone: another file is in the way (photos/file 3 ñ.bin)",
    )
    assert (home / "out" / "photos" / "file 3 ñ.bin").read_bytes() == b"mine"


def test_a_folder_link_downloads_as_a_zip(home: Path) -> None:
    source = tree(home / "Zipped", 25, seed=4)
    ok(sealbox(home, "upload", "Zipped", "--to", "zips"))
    url = ok(sealbox(home, "share", "create", "zips/Zipped")).stdout.strip()
    got = json.loads(ok(sealbox(home, "download", url, "--zip", "--json")).stdout)
    assert got["path"] == "Zipped.zip"
    with zipfile.ZipFile(home / "Zipped.zip") as archive:
        assert archive.testzip() is None
        files = {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}
    assert files == {rel: data for rel, data in local(source).items() if data is not None}
    exists = sealbox(home, "download", url, "--zip")
    assert (exists.returncode, exists.stderr.strip()) == (
        1,
        "error: Zipped.zip exists already: choose another name with -o, or --force",
    )


def test_share_create_of_several_paths_is_one_selection(home: Path) -> None:
    ok(sealbox(home, "mkdir", "sel/folder"))
    for name in ("one.txt", "two.txt"):
        (home / name).write_bytes(name.encode())
        ok(sealbox(home, "upload", name, "--to", "sel"))
    ok(sealbox(home, "upload", "one.txt", "--to", "sel/folder"))
    link = json.loads(ok(sealbox(home, "share", "create", "sel/one.txt", "sel/folder", "--json")).stdout)
    assert (link["kind"], link["items"], link["file_id"]) == ("selection", 2, None)
    ok(sealbox(home, "download", link["url"], "picked"))
    assert local(home / "picked") == {"one.txt": b"one.txt", "folder": None, "folder/one.txt": b"one.txt"}
    file_id = json.loads(ok(sealbox(home, "ls", "sel", "--json")).stdout)[-1]["id"]
    by_id = json.loads(ok(sealbox(home, "share", "create", file_id, "--json")).stdout)  # as before: a file id
    assert (by_id["kind"], by_id["file_id"]) == ("file", file_id)
    refusals = {
        ("share", "create", "sel/none"): (3, "error: nothing at sel/none"),
        ("share", "create", "/"): (2, "error: the top cannot be shared: name files or folders"),
        ("share", "create", *["sel/one.txt"] * 1001): (2, "error: a link holds at most 1000 items"),
        ("download", link["url"], "--zip", "-o", "x.zip", "y.zip"): (2, "error: give DEST or -o, not both"),
    }
    for args, expected in refusals.items():
        done = sealbox(home, *args)
        assert (done.returncode, done.stderr.strip()) == expected, args[:3]


NAMES = ["notes", "Übersicht", "日本語", "résumé", "Ωmega", "data", "фото", "plain", "naïve café", "🎉 party"]


def big_tree(root: Path, files: int) -> dict[str, bytes]:
    """``files`` small random files, nested three levels, some empty, many with non-ASCII names."""
    rng = random.Random(16)
    made: dict[str, bytes] = {}
    for n in range(files):
        parts = [f"{NAMES[n % 10]} {n % 7}", f"{NAMES[(n // 10) % 10]}-{n % 5}", NAMES[(n // 7) % 10]][: n % 4]
        rel = "/".join([*parts, f"{NAMES[(n * 7) % 10]} {n}.bin"])
        data = b"" if n % 13 == 0 else rng.randbytes(rng.randrange(1, 2048))
        path = root.joinpath(*rel.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        made[rel] = data
    return made


def long_run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``sealbox`` with time for 10,000 files on a busy machine (the server spends about
    11 ms of CPU on each small file: scripts/measure_tree_upload.py)."""
    return subprocess.run(
        [*SEALBOX, *args], env=env(home), cwd=home, capture_output=True, text=True, timeout=3000, check=False
    )


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_ten_thousand_files_upload_share_and_download_as_one_zip_every_tool_accepts(home: Path) -> None:
    source = big_tree(home / "Big tree", 10_000)
    uploaded = json.loads(ok(long_run(home, "upload", "Big tree", "--json")).stdout)[0]
    assert (uploaded["uploaded"], uploaded["skipped"], uploaded["conflicts"]) == (10_000, 0, [])
    url = ok(sealbox(home, "share", "create", "Big tree")).stdout.strip()
    got = json.loads(ok(long_run(home, "download", url, "--zip", "-o", "big.zip", "--json")).stdout)
    archive = home / "big.zip"
    assert got["size"] == archive.stat().st_size
    with zipfile.ZipFile(archive) as opened:
        assert opened.testzip() is None
        members = {info.filename: info for info in opened.infolist()}
        assert {name: opened.read(name) for name in members if not name.endswith("/")} == source
    tested = subprocess.run(["unzip", "-t", "-qq", str(archive)], capture_output=True, check=False)
    assert tested.returncode == 0, tested.stdout[-2000:]
    listed = subprocess.run(["bsdtar", "-tf", str(archive)], capture_output=True, text=True, check=False)
    assert listed.returncode == 0, listed.stderr
    assert set(source) <= set(listed.stdout.splitlines())
    seven = subprocess.run(["7z", "t", str(archive)], capture_output=True, text=True, check=False)
    assert seven.returncode == 0, seven.stdout[-2000:]
    assert "Everything is Ok" in seven.stdout
    extracted = home / "extracted"
    extracted.mkdir()
    unpacked = subprocess.run(["bsdtar", "-xf", str(archive), "-C", str(extracted)], capture_output=True, check=False)
    assert unpacked.returncode == 0, unpacked.stderr
    assert {rel: data for rel, data in local(extracted).items() if data is not None} == source
