"""The ceiling of sealbox's own stack: the same framework and server and the same blob
store, streaming the raw body to disk (atomic, fsynced) and back, with no encryption and
no database. A baseline only; nothing in src/ imports it.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from sealbox.storage.local import LocalStore

store = LocalStore(Path(os.environ.get("PLAIN_DATA_DIR", "plain-data")))
app = FastAPI()


@app.post("/files")
async def upload(request: Request) -> dict[str, str | int]:
    file_id = uuid.uuid4().hex
    size = await store.put(f"files/{file_id}", (piece async for piece in request.stream() if piece))
    return {"id": file_id, "size": size}


@app.get("/files/{file_id}")
async def download(file_id: str, request: Request) -> Response:
    key = f"files/{file_id}"
    size = await store.size(key)
    start, end = 0, size - 1
    status = 200
    headers = {"Accept-Ranges": "bytes"}
    spec = request.headers.get("range", "")
    if spec.startswith("bytes=") and "," not in spec:
        first, _, last = spec[6:].partition("-")
        start, end = (size - int(last), size - 1) if not first else (int(first), int(last) if last else size - 1)
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    return StreamingResponse(store.get_range(key, start, end - start + 1), status_code=status, headers=headers)
