"""The article's design, reproduced faithfully as a baseline. Nothing in src/ imports it.

- a new Fernet key at every start (``Fernet.generate_key()``);
- ``POST /upload`` takes an ``UploadFile``, reads the whole file, encrypts it with Fernet
  and writes the token to a file named by the client-supplied file name;
- ``GET /download/{file_path}`` reads the token, decrypts it, writes the plaintext to a file
  and returns it with ``FileResponse``.

Its flaws (a key lost at every restart, whole files in memory, plaintext on disk, a
client-supplied path) are the point: it is what sealbox is measured against.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet
from fastapi import FastAPI, UploadFile
from starlette.responses import FileResponse

DATA = Path(os.environ.get("SEED_DATA_DIR", "seed-data"))
DATA.mkdir(parents=True, exist_ok=True)
key = Fernet.generate_key()
cipher_suite = Fernet(key)
app = FastAPI()


@app.post("/upload")
async def upload(file: UploadFile) -> dict[str, str]:
    contents = await file.read()
    encrypted = cipher_suite.encrypt(contents)
    name = file.filename or "upload"
    (DATA / f"{name}.enc").write_bytes(encrypted)
    return {"id": name}


@app.get("/download/{file_path}")
async def download(file_path: str) -> FileResponse:
    encrypted = (DATA / f"{file_path}.enc").read_bytes()
    decrypted = cipher_suite.decrypt(encrypted)
    out = DATA / f"{file_path}.dec"
    out.write_bytes(decrypted)
    return FileResponse(out, filename=file_path)
