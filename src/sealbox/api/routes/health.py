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
async def readyz(runtime: RuntimeDep) -> dict[str, str]:
    """Readiness: the database and the blob store both answer (503 otherwise)."""
    await runtime.check_ready()
    return {"status": "ready"}
