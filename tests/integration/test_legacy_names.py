"""``sealbox serve`` fills in the listing names of files stored before folders existed
(null ``listed_name_enc`` and ``name_tag``) when it starts."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx

from tests.integration.server import Installation, Server, login, named


def test_start_gives_old_files_their_listing_names(tmp_path: Path) -> None:
    install = Installation(tmp_path / "install")
    server = Server(install).start()
    assert server.admin_password is not None
    token = login(server.url, "admin", server.admin_password)
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=auth) as client:
        first = client.post("/api/v1/files", headers=named("same.txt"), content=b"one").json()["id"]
        install.sql("UPDATE files SET listed_name_enc = NULL, name_tag = NULL")
        second = client.post("/api/v1/files", headers=named("same.txt"), content=b"two").json()["id"]
        other = client.post("/api/v1/files", headers=named("other.txt"), content=b"three").json()["id"]
    server.stop()
    install.sql("UPDATE files SET listed_name_enc = NULL, name_tag = NULL")  # as before schema 0011

    server = Server(install).start()
    try:
        assert install.sql("SELECT count(*) FROM files WHERE listed_name_enc IS NULL OR name_tag IS NULL") == [(0,)]
        with httpx.Client(base_url=server.url, headers=auth) as client:
            page = client.get("/api/v1/folders/top").json()
            assert [(item["id"], item["name"]) for item in page["items"]] == [
                (other, "other.txt"),
                (second, "same (2).txt"),  # the newer of two old files of one name
                (first, "same.txt"),
            ]
            assert page["total"] == 3
            assert client.get(f"/api/v1/files/{second}").json()["name"] == "same (2).txt"
            assert client.get(f"/api/v1/files/{second}/content").content == b"two"
    finally:
        server.stop()
