"""Moves, renames, makes and recursive deletes of folders are atomic under concurrent
requests (issue 16): parallel clients against a real server, on both backends.

Each race starts its requests together (a barrier), is run for several rounds, and is
judged by its answers (exactly one winner where one is possible) and by the database
read directly afterwards: every folder reaches the top of its account, every file's
folder exists, no name is held twice in a folder, and the blob store holds exactly the
blobs of the file rows.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx2 as httpx

from sealbox.config import Settings
from sealbox.runtime import build, load_keyring
from tests.integration.conftest import Account
from tests.integration.server import Installation, blob_key
from tests.integration.test_folders import _hex, check_tree, folder, put
from tests.integration.test_tus import settings_from_env

ROUNDS = 4


def race(account: Account, calls: list[Callable[[httpx.Client], httpx.Response]]) -> list[httpx.Response]:
    """Run ``calls`` at once, each on its own connection, released together."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[httpx.Client], httpx.Response]) -> httpx.Response:
        with httpx.Client(base_url=account.client.base_url, headers=account.client.headers, timeout=120) as client:
            client.get("/healthz")  # connected before the start
            barrier.wait()
            return call(client)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def statuses(responses: list[httpx.Response]) -> list[int]:
    for response in responses:
        assert response.status_code < 500, response.text
    return sorted(r.status_code for r in responses)


def check_names(install: Installation) -> None:
    """No name is held twice in a folder: the tags of an account's files and folders are
    all different (the database enforces it per table; the check across them is ours)."""
    tags = [
        (_hex(owner), bytes(tag))  # type: ignore[call-overload]
        for table in ("files", "folders")
        for owner, tag in install.sql(f"SELECT owner_id, name_tag FROM {table} WHERE name_tag IS NOT NULL")  # noqa: S608
    ]
    assert len(tags) == len(set(tags)), "a name is taken twice in one folder"


def check_blobs(install: Installation) -> None:
    """The blob store holds exactly the blobs of the file rows (one-blob files here)."""
    rows = {blob_key(str(_hex(row[0]))) for row in install.sql("SELECT id FROM files WHERE segments = 0")}
    stored = {key for key in install.blobs.stored() if key.startswith("files/")}
    assert stored - rows == set(), "blobs without a file"
    assert rows - stored == set(), "files without a blob"
    # Parts: of an upload in progress, or segments of a file; nothing else.
    parts = {str(row[0]) for row in install.sql("SELECT key FROM upload_parts UNION SELECT key FROM file_segments")}
    stored_parts = {key for key in install.blobs.stored() if not key.startswith("files/")}
    assert stored_parts - parts == set(), "parts without an upload or a file"
    assert parts - stored_parts == set(), "recorded parts without a blob"


def check_all(install: Installation) -> None:
    check_tree(install)
    check_names(install)
    check_blobs(install)


def sweep_blobs(install: Installation) -> int:
    """Run the blob sweeper once, for anything older than now."""
    settings = Settings(_env_file=None, **settings_from_env(install))  # type: ignore[call-arg]

    async def run() -> int:
        runtime = build(settings, load_keyring(settings))
        try:
            return await runtime.files.sweep(timedelta(0))
        finally:
            await runtime.close()

    return asyncio.run(run())


def test_moving_two_folders_into_each_other_makes_no_cycle(alice: Account, install: Installation) -> None:
    def one_round(n: int) -> None:
        a = folder(alice, f"swap-a-{n}")
        b = folder(alice, f"swap-b-{n}")
        answers = race(
            alice,
            [
                lambda c: c.patch(f"/api/v1/folders/{a}", json={"parent_id": b}),
                lambda c: c.patch(f"/api/v1/folders/{b}", json={"parent_id": a}),
            ],
        )
        assert statuses(answers) == [200, 409]
        loser = next(r for r in answers if r.status_code == 409)
        assert "cannot be moved into itself" in loser.json()["detail"]
        parents = {r.json()["id"]: r.json()["parent_id"] for r in answers if r.status_code == 200}
        ((moved, parent),) = parents.items()
        assert {moved, parent} == {a, b}
        check_all(install)

    for n in range(ROUNDS):
        one_round(n)


def test_moving_a_chain_around_in_parallel_makes_no_cycle(alice: Account, install: Installation) -> None:
    """Three folders each moved under the next (a→b, b→c, c→a): at most two can win."""

    def one_round(n: int) -> None:
        ids = [folder(alice, f"ring-{n}-{i}") for i in range(3)]
        answers = race(
            alice,
            [
                (lambda c, i=i: c.patch(f"/api/v1/folders/{ids[i]}", json={"parent_id": ids[(i + 1) % 3]}))
                for i in range(3)
            ],
        )
        assert statuses(answers) == [200, 200, 409]
        check_all(install)

    for n in range(ROUNDS):
        one_round(n)


def test_making_one_name_in_parallel_one_wins(alice: Account, install: Installation) -> None:
    box = folder(alice, "same-name-box")

    def one_round(n: int) -> None:
        answers = race(alice, [lambda c: c.post("/api/v1/folders", json={"name": f"Same {n}", "parent_id": box})] * 6)
        assert statuses(answers) == [201] + [409] * 5
        for loser in answers:
            if loser.status_code == 409:
                assert loser.json()["detail"] == f"an item named 'Same {n}' already exists in that folder"
        check_all(install)

    for n in range(ROUNDS):
        one_round(n)

    # A folder and a file racing for one name: one of them has it.
    def one_round(n: int) -> None:
        answers = race(
            alice,
            [
                lambda c: c.post("/api/v1/folders", json={"name": f"Either {n}", "parent_id": box}),
                lambda c: c.post(
                    "/api/v1/files",
                    params={"folder": box, "on_conflict": "fail"},
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''Either%20{n}"},
                    content=b"either",
                ),
            ],
        )
        assert statuses(answers) == [201, 409]
        check_all(install)

    for n in range(ROUNDS):
        one_round(n)


def test_renaming_to_one_name_in_parallel_one_wins(alice: Account, install: Installation) -> None:
    box = folder(alice, "rename-race")

    def one_round(n: int) -> None:
        folders = [folder(alice, f"r-{n}-{i}", box) for i in range(3)]
        files = [put(alice, f"f-{n}-{i}", b"f", folder=box).json()["id"] for i in range(3)]
        answers = race(
            alice,
            [(lambda c, f=f: c.patch(f"/api/v1/folders/{f}", json={"name": f"Won {n}"})) for f in folders]
            + [(lambda c, f=f: c.patch(f"/api/v1/files/{f}", json={"name": f"Won {n}"})) for f in files],
        )
        assert statuses(answers) == [200] + [409] * 5
        names = [i["name"] for i in alice.client.get(f"/api/v1/folders/{box}", params={"limit": 1000}).json()["items"]]
        assert names.count(f"Won {n}") == 1
        check_all(install)

    for n in range(ROUNDS):
        one_round(n)


def test_recursive_deletes_of_nested_folders_in_parallel(alice: Account, install: Installation) -> None:
    def one_round(n: int) -> None:
        top = folder(alice, f"nest-{n}")
        chain = [top]
        files = []
        for depth in range(4):
            files.append(put(alice, f"in-{depth}.txt", b"n" * depth, folder=chain[-1]).json()["id"])
            chain.append(folder(alice, f"level-{depth}", chain[-1]))
        answers = race(alice, [(lambda c, f=f: c.delete(f"/api/v1/folders/{f}")) for f in reversed(chain)])
        codes = statuses(answers)
        assert set(codes) <= {204, 404}
        assert 204 in codes
        for f in chain:
            assert alice.client.get(f"/api/v1/folders/{f}").status_code == 404
        for f in files:
            assert alice.client.get(f"/api/v1/files/{f}").status_code == 404
            assert blob_key(f) not in install.blobs.stored()
        check_all(install)

    for n in range(ROUNDS):
        one_round(n)


def test_uploads_into_a_folder_while_it_is_deleted(alice: Account, install: Installation) -> None:
    """Each upload either lands before the delete (and goes with the folder) or is
    refused after it; none is left in a missing folder, and no blob is left without a
    row, before the sweeper or after it."""
    data = b"racing upload " * 20_000  # 280 kB: long enough to be mid-stream at the delete

    def one_round(n: int) -> None:
        box = folder(alice, f"doomed-{n}")
        sub = folder(alice, "sub", box)
        uploads: list[Callable[[httpx.Client], httpx.Response]] = [
            (
                lambda c, i=i: c.post(
                    "/api/v1/files",
                    params={"folder": sub if i % 2 else box},
                    headers={
                        "Content-Disposition": f"attachment; filename*=UTF-8''up-{i}",
                        **({"Sealbox-Path": "made/on-the-way"} if i % 3 == 0 else {}),
                    },
                    content=data,
                )
            )
            for i in range(5)
        ]
        answers = race(alice, [*uploads, lambda c: c.delete(f"/api/v1/folders/{box}")])
        *sent, deleted = answers
        assert deleted.status_code == 204, deleted.text
        for response in sent:
            assert response.status_code in (201, 404), response.text
            if response.status_code == 404:
                assert response.json()["detail"] == "folder not found"
            else:
                assert alice.client.get(f"/api/v1/files/{response.json()['id']}").status_code == 404
        check_all(install)

    for n in range(ROUNDS):
        one_round(n)
    sweep_blobs(install)
    check_all(install)


def test_moves_and_makes_into_a_folder_while_it_is_deleted(alice: Account, install: Installation) -> None:
    def one_round(n: int) -> None:
        doomed = folder(alice, f"target-{n}")
        outside = folder(alice, f"outside-{n}")
        loose = put(alice, f"loose-{n}.txt", b"loose").json()["id"]
        answers = race(
            alice,
            [
                lambda c: c.patch(f"/api/v1/folders/{outside}", json={"parent_id": doomed}),
                lambda c: c.patch(f"/api/v1/files/{loose}", json={"folder_id": doomed}),
                lambda c: c.post("/api/v1/folders", json={"name": "new", "parent_id": doomed}),
                lambda c: c.delete(f"/api/v1/folders/{doomed}"),
            ],
        )
        *changes, deleted = answers
        assert deleted.status_code == 204
        for response in changes:
            assert response.status_code in (200, 201, 404), response.text
        # What moved in went with the folder; what did not stayed where it was.
        moved_folder, moved_file, _ = changes
        assert alice.client.get(f"/api/v1/folders/{outside}").status_code == (
            404 if moved_folder.status_code == 200 else 200
        )
        assert alice.client.get(f"/api/v1/files/{loose}").status_code == (404 if moved_file.status_code == 200 else 200)
        check_all(install)

    for n in range(ROUNDS):
        one_round(n)


def test_resumable_uploads_completing_while_their_folder_is_deleted(alice: Account, install: Installation) -> None:
    """The last PATCH of each upload races the folder's deletion: it completes first (and
    its file goes with the folder), or finds the upload gone (404) or its folder gone
    (410, saying so); no row or part is left either way."""
    data = b"t" * 150_000
    tus = {"Tus-Resumable": "1.0.0"}
    stream = {**tus, "Content-Type": "application/offset+octet-stream"}

    def one_round(n: int) -> None:
        box = folder(alice, f"tus-doomed-{n}")
        urls = []
        for i in range(4):
            metadata = ",".join(
                f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in (("filename", f"u{i}"), ("folder", box))
            )
            made = alice.client.post(
                "/api/v1/uploads/", headers={**tus, "Upload-Length": str(len(data)), "Upload-Metadata": metadata}
            )
            assert made.status_code == 201, made.text
            url = made.headers["location"]
            first = alice.client.patch(url, content=data[:50_000], headers={**stream, "Upload-Offset": "0"})
            assert first.status_code == 204, first.text
            urls.append(url)
        answers = race(
            alice,
            [
                *[
                    (lambda c, u=u: c.patch(u, content=data[50_000:], headers={**stream, "Upload-Offset": "50000"}))
                    for u in urls
                ],
                lambda c: c.delete(f"/api/v1/folders/{box}"),
            ],
        )
        *completions, deleted = answers
        assert deleted.status_code == 204, deleted.text
        for response in completions:
            assert response.status_code in (204, 404, 410), response.text
            if response.status_code == 410:
                assert "the folder this upload was going to has been deleted" in response.json()["detail"]
            if response.status_code == 204:
                assert alice.client.get(f"/api/v1/files/{response.headers['sealbox-file-id']}").status_code == 404
        for url in urls:
            assert alice.client.head(url, headers=tus).status_code == 404
        check_all(install)

    for n in range(ROUNDS):
        one_round(n)


def test_a_tree_dropped_through_a_link_in_parallel_makes_each_folder_once(
    alice: Account, install: Installation
) -> None:
    """Files of one dropped folder sent at once through a link to a folder, each with the
    same relative path: the link's file limit holds, and each folder of the path is made
    once, holding every file that was accepted."""

    def one_round(n: int) -> None:
        box = folder(alice, f"drop-target-{n}")
        link = alice.client.post("/api/v1/upload-requests", json={"folder_id": box, "max_files": 4}).json()
        answers = race(
            alice,
            [
                (
                    lambda c, i=i: c.post(
                        f"/r/{link['token']}/files",
                        headers={
                            "Content-Disposition": f"attachment; filename*=UTF-8''photo-{i}.jpg",
                            "Sealbox-Path": "holiday/day%201",
                        },
                        content=b"p" * 1000,
                    )
                )
                for i in range(8)
            ],
        )
        codes = statuses(answers)
        assert codes.count(201) == 4, [r.text for r in answers]
        assert all(400 <= code < 500 for code in codes if code != 201)
        top = alice.client.get(f"/api/v1/folders/{box}").json()["items"]
        assert [(i["kind"], i["name"]) for i in top] == [("folder", "holiday")]
        inner = alice.client.get(f"/api/v1/folders/{top[0]['id']}").json()["items"]
        assert [(i["kind"], i["name"]) for i in inner] == [("folder", "day 1")]
        files = alice.client.get(f"/api/v1/folders/{inner[0]['id']}").json()["items"]
        assert len(files) == 4
        assert {f["name"] for f in files} == {r.json()["name"] for r in answers if r.status_code == 201}
        check_all(install)

    for n in range(ROUNDS):
        one_round(n)
