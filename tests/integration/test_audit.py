"""The audit trail records who did what, shows owners their own events, holds no secret,
and `sealbox audit verify` finds any edited or removed row."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2 as httpx
import pytest

from tests.integration.conftest import Account
from tests.integration.server import Installation, Server, login, named

COLUMNS = "seq, at, action, actor_id, actor, owner_id, file_id, target, client, detail, prev_hash, hash"


@pytest.fixture(scope="module")
def story(server: Server, install: Installation, alice: Account, bob: Account) -> dict[str, str]:
    """One of everything, by alice (an administrator) and bob."""
    assert (
        httpx.post(f"{server.url}/api/v1/auth/token", data={"username": "bob", "password": "nope"}).status_code == 401
    )
    login(server.url, "bob", "bob-password-1")
    file_id = alice.client.post("/api/v1/files", headers=named("Quarterly secrets.xlsx"), content=b"q").json()["id"]
    assert alice.client.get(f"/api/v1/files/{file_id}/content").status_code == 200
    link = alice.client.post(f"/api/v1/files/{file_id}/shares", json={"password": "share-password"}).json()
    assert httpx.post(f"{server.url}/s/{link['token']}/unlock", json={"password": "wrong-guess"}).status_code == 401
    grant = httpx.post(f"{server.url}/s/{link['token']}/unlock", json={"password": "share-password"}).json()["grant"]
    auth = {"Authorization": f"Bearer {grant}"}
    assert httpx.get(f"{server.url}/s/{link['token']}/download", headers=auth).status_code == 200
    assert alice.client.delete(f"/api/v1/shares/{link['id']}").status_code == 204
    given = alice.client.post(f"/api/v1/files/{file_id}/grants", json={"username": "bob"}).json()
    assert bob.client.get(f"/api/v1/files/{file_id}/content").status_code == 200
    assert alice.client.delete(f"/api/v1/files/{file_id}/grants/{given['id']}").status_code == 204
    bobs = bob.client.post("/api/v1/files", headers=named("bob-only.txt"), content=b"b").json()["id"]
    created = alice.client.post("/api/v1/admin/users", json={"username": "temp", "password": "temp-password"})
    assert alice.client.delete(f"/api/v1/admin/users/{created.json()['id']}").status_code == 204
    assert alice.client.delete(f"/api/v1/files/{file_id}").status_code == 204
    assert install.cli("keys", "rotate").returncode == 0
    secrets = {"token": link["token"], "grant": grant, "api": alice.token, "password": "share-password"}
    return {"file": file_id, "bobs": bobs, "share": link["id"], **secrets}


def actions(page: dict[str, list[dict[str, object]]]) -> list[object]:
    return [event["action"] for event in page["items"]]


def test_every_kind_of_event_is_recorded(story: dict[str, str], alice: Account) -> None:
    everything = alice.client.get("/api/v1/audit", params={"all": True, "limit": 1000}).json()
    seen = set(actions(everything))
    assert {
        "login.ok",
        "login.failed",
        "file.upload",
        "file.download",
        "share.create",
        "link.password_failed",
        "link.unlock",
        "share.revoke",
        "grant.give",
        "grant.revoke",
        "file.delete",
        "user.create",
        "user.delete",
        "key.rotate",
    } <= seen
    downloads = [e for e in everything["items"] if e["action"] == "file.download" and e["file_id"] == story["file"]]
    assert sorted(str(e["detail"]["via"]) for e in downloads) == ["grant", "link", "owner"]
    by_link = next(e for e in downloads if e["detail"]["via"] == "link")
    assert by_link["actor"] == "link"
    assert by_link["target"] == story["share"]
    assert by_link["client"] == "127.0.0.1"


RANGES = [(0, 9), (10, 99), (100, 999), (1000, 2999)]  # one whole download, in consecutive ranges
ROUTES = ["owner-api", "owner-seed", "owner-web", "grantee-api", "grantee-seed", "link"]


def reader(route: str, server: Server, alice: Account, bob: Account, file_id: str) -> tuple[httpx.Client, str]:
    """A client reading ``file_id`` the way ``route`` says, and the path it reads."""
    who, _, kind = route.partition("-")
    if who == "link":
        token = alice.client.post(f"/api/v1/files/{file_id}/shares", json={"password": "pw-for-ranges"}).json()["token"]
        grant = httpx.post(f"{server.url}/s/{token}/unlock", json={"password": "pw-for-ranges"}).json()["grant"]
        return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {grant}"}), f"/s/{token}/download"
    path = f"/download/{file_id}" if kind == "seed" else f"/api/v1/files/{file_id}/content"
    if who == "grantee":
        assert alice.client.post(f"/api/v1/files/{file_id}/grants", json={"username": "bob"}).status_code == 201
        return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {bob.token}"}), path
    if kind == "web":
        # The web pages link to the API's URL and are read with the session cookie.
        browser = httpx.Client(base_url=server.url, headers={"Origin": server.url, "Sec-Fetch-Site": "same-origin"})
        signed = browser.post("/login", data={"username": "admin", "password": server.admin_password or ""})
        assert signed.status_code == 303, signed.text
        return browser, path
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {alice.token}"}), path


@pytest.mark.parametrize("route", ROUTES)
def test_every_response_with_file_bytes_is_audited_ranges_included(
    server: Server, alice: Account, bob: Account, route: str
) -> None:
    data = bytes(range(256)) * 12  # 3072 bytes
    file_id = alice.client.post("/api/v1/files", headers=named("ranged.bin"), content=data).json()["id"]
    client, path = reader(route, server, alice, bob, file_id)
    try:
        got = b""
        for start, end in RANGES:
            answer = client.get(path, headers={"Range": f"bytes={start}-{end}"})
            assert answer.status_code == 206, answer.text
            got += answer.content
        assert client.head(path).status_code == 200  # sends no bytes: not a download
        assert client.get(path).content == data
    finally:
        client.close()
    assert got == data[: RANGES[-1][1] + 1]

    def downloads() -> list[dict[str, Any]]:
        page = alice.client.get("/api/v1/audit", params={"limit": 1000}).json()["items"]
        return [e for e in reversed(page) if e["action"] == "file.download" and e["file_id"] == file_id]

    deadline = time.monotonic() + 20
    while len(downloads()) < len(RANGES) + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    events = downloads()
    expected = [{"start": a, "bytes": b - a + 1} for a, b in RANGES] + [{"bytes": len(data)}]
    assert [{k: e["detail"][k] for k in ("start", "bytes") if k in e["detail"]} for e in events] == expected
    via = {"owner": "owner", "grantee": "grant", "link": "link"}[route.partition("-")[0]]
    assert {e["detail"]["via"] for e in events} == {via}
    assert sum(int(e["detail"]["bytes"]) for e in events) == len(got) + len(data)


def test_owners_see_their_events_only(story: dict[str, str], bob: Account) -> None:
    mine = bob.client.get("/api/v1/audit", params={"limit": 1000}).json()["items"]
    assert {e["owner_id"] for e in mine} == {mine[0]["owner_id"]}
    assert any(e["file_id"] == story["bobs"] for e in mine)
    assert all(e["file_id"] != story["file"] for e in mine)
    refused = bob.client.get("/api/v1/audit", params={"all": True})
    assert refused.status_code == 403
    assert refused.json()["detail"] == "administrators only"


def test_pages_go_back_in_time(story: dict[str, str], alice: Account) -> None:
    first = alice.client.get("/api/v1/audit", params={"all": True, "limit": 3}).json()
    second = alice.client.get("/api/v1/audit", params={"all": True, "limit": 3, "before": first["next_before"]}).json()
    seqs = [e["seq"] for e in first["items"] + second["items"]]
    assert seqs == sorted(seqs, reverse=True)
    assert len(set(seqs)) == 6


def test_events_hold_no_secret_or_file_name(story: dict[str, str], install: Installation) -> None:
    rows = str(install.sql("SELECT * FROM audit_events"))
    for secret in ("token", "grant", "api", "password"):
        assert story[secret] not in rows, secret
    assert "Quarterly" not in rows
    assert "bob-only" not in rows


def verify(install: Installation) -> tuple[int, str]:
    done = install.cli("audit", "verify")
    return done.returncode, done.stderr.strip()


def test_verify_finds_every_edit_and_removal(story: dict[str, str], install: Installation) -> None:
    code, message = verify(install)
    assert code == 0, message
    assert message.startswith("audit trail intact:")
    last = int(install.sql("SELECT max(seq) FROM audit_events")[0][0])  # type: ignore[arg-type]
    middle = last // 2

    def row(seq: int) -> dict[str, object]:
        values = install.sql(f"SELECT {COLUMNS} FROM audit_events WHERE seq = :seq", seq=seq)[0]  # noqa: S608
        return dict(zip(COLUMNS.split(", "), values, strict=True))

    def put_back(saved: dict[str, object]) -> None:
        install.sql("DELETE FROM audit_events WHERE seq = :seq", seq=saved["seq"])
        names = ", ".join(f":{c}" for c in saved)
        install.sql(f"INSERT INTO audit_events ({COLUMNS}) VALUES ({names})", **saved)  # noqa: S608
        assert verify(install)[0] == 0

    saved = row(middle)
    install.sql("UPDATE audit_events SET actor = 'someone-else' WHERE seq = :seq", seq=middle)
    assert verify(install) == (3, f"audit trail broken: row {middle} was altered")
    put_back(saved)

    detail = json.dumps({"edited": True})
    install.sql("UPDATE audit_events SET detail = :d WHERE seq = :seq", d=detail, seq=middle)
    assert verify(install) == (3, f"audit trail broken: row {middle} was altered")
    put_back(saved)

    following = row(middle + 1)
    install.sql("UPDATE audit_events SET prev_hash = :h WHERE seq = :seq", h=bytes(32), seq=middle + 1)
    assert verify(install) == (
        3,
        f"audit trail broken: row {middle} was altered, or the hash row {middle + 1} keeps of it was",
    )
    put_back(following)

    for seq in (1, middle, last):
        removed = row(seq)
        install.sql("DELETE FROM audit_events WHERE seq = :seq", seq=seq)
        code, message = verify(install)
        assert code == 3
        if seq == last:
            assert message == f"audit trail broken: the trail ends at row {last - 1} but {last} rows were written"
        else:
            assert message == f"audit trail broken: row {seq} is missing"
        put_back(removed)


def test_folder_operations_are_events_with_counts_and_never_names(
    alice: Account, install: Installation, server: Server
) -> None:
    """Making, renaming, moving and deleting folders, and renaming and moving files, are
    events naming ids; a recursive delete counts what went (folders, files, bytes); no
    event holds a name."""
    hidden = ["Secret Project Aurora", "Board minutes", "draft-9.docx", "final-final.docx", "Archive 2019"]
    project = alice.client.post("/api/v1/folders", json={"name": hidden[0]}).json()["id"]
    minutes = alice.client.post("/api/v1/folders", json={"name": hidden[1], "parent_id": project}).json()["id"]
    upload = alice.client.post(
        "/api/v1/files", params={"folder": minutes}, headers=named(hidden[2]), content=b"d" * 1000
    ).json()["id"]
    alice.client.post("/api/v1/files", params={"folder": project}, headers=named("x.txt"), content=b"x" * 24)
    changes = [
        alice.client.patch(f"/api/v1/files/{upload}", json={"name": hidden[3]}),
        alice.client.patch(f"/api/v1/files/{upload}", json={"folder_id": project}),
        alice.client.patch(f"/api/v1/files/{upload}", json={"folder_id": minutes, "name": hidden[2]}),
        alice.client.patch(f"/api/v1/folders/{minutes}", json={"name": hidden[4]}),
        alice.client.patch(f"/api/v1/folders/{minutes}", json={"parent_id": None}),
        alice.client.patch(f"/api/v1/folders/{minutes}", json={"parent_id": project, "name": hidden[1]}),
    ]
    assert [c.status_code for c in changes] == [200] * 6
    assert alice.client.delete(f"/api/v1/folders/{project}").status_code == 204
    events = alice.client.get("/api/v1/audit", params={"limit": 1000}).json()["items"]
    mine = [e for e in events if e["target"] in (project, minutes) or e["file_id"] == upload]
    by_action = sorted((e["action"], e["target"] or e["file_id"]) for e in mine)
    assert by_action == sorted(
        [
            ("folder.create", project),
            ("folder.create", minutes),
            ("file.upload", upload),
            ("file.rename", upload),
            ("file.move", upload),
            ("file.update", upload),
            ("folder.rename", minutes),
            ("folder.move", minutes),
            ("folder.update", minutes),
            ("folder.delete", project),
        ]
    )
    deleted = next(e for e in mine if e["action"] == "folder.delete")
    assert deleted["detail"] == {"files": 2, "folders": 2, "bytes": 1024}
    rows = str(install.sql("SELECT * FROM audit_events"))
    for name in hidden:
        assert name not in rows, name
