from __future__ import annotations

from fastapi import APIRouter

from sealbox.api.deps import RuntimeDep
from sealbox.api.errors import responses

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process is up and serving."""
    return {"status": "ok"}


@router.get("/readyz", responses=responses(503))
async def readyz(runtime: RuntimeDep) -> dict[str, str | list[str]]:
    """Readiness: the database and the blob store both answer, and this process holds
    every master key that stored data has named to it (503 otherwise, naming what is
    missing). Lists the master key ids this process holds, primary first."""
    await runtime.check_ready()
    primary = runtime.keyring.primary_id
    return {"status": "ready", "keys": [primary, *sorted(runtime.keyring.ids - {primary})]}
