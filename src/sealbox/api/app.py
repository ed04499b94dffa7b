"""The ASGI application: ``create_app(settings)``, and ``app_from_env`` for workers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import structlog
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.routing import BaseRoute

from sealbox import __version__
from sealbox.api import errors, openapi
from sealbox.api.limits import BodyLimit
from sealbox.api.routes import admin, auth, files, folders, health, links, me, seed, sharing, tus
from sealbox.config import Settings
from sealbox.logs import configure_logging
from sealbox.runtime import Runtime, open_runtime
from sealbox.web import pages
from sealbox.web.security import BrowserSecurity

log = structlog.get_logger()
SWEEP_EVERY = timedelta(minutes=15)
# Unfinished writes and rowless blobs younger than this may belong to an upload in
# progress; older ones are leftovers of a crash or a lost connection.
SWEEP_AGE = timedelta(hours=1)


async def _sweeper(runtime: Runtime) -> None:
    while True:
        try:
            removed = await runtime.files.sweep(SWEEP_AGE) + await runtime.uploads.sweep(SWEEP_AGE)
            if removed:
                log.info("sweep.removed", count=removed)
        except Exception as exc:
            log.warning("sweep.failed", error=type(exc).__name__)
        await asyncio.sleep(SWEEP_EVERY.total_seconds())


ROUTERS = (
    health.router,
    auth.router,
    me.router,
    admin.router,
    files.router,
    sharing.router,
    links.router,
    tus.router,
    folders.router,
    folders.archive_router,
    seed.router,
)


def routes() -> list[BaseRoute]:
    """Every route of the application (API and pages), with its full path."""
    return [route for router in (*ROUTERS, pages.router) for route in router.routes]


def create_app(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await open_runtime(settings)
        app.state.runtime = runtime
        await runtime.presence.report()  # the key commands see this process before it serves
        tasks = [asyncio.create_task(_sweeper(runtime)), asyncio.create_task(runtime.presence.run())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await runtime.presence.leave()
            await runtime.close()

    app = FastAPI(
        title="sealbox",
        version=__version__,
        summary="Share files, encrypted at rest.",
        lifespan=lifespan,
        # FastAPI's interactive /docs loads its script from a CDN, which the web
        # interface's Content-Security-Policy forbids; /openapi.json describes the API.
        docs_url=None,
        redoc_url=None,
    )
    app.state.cookie_secure = settings.cookie_secure  # read by every cookie the web pages set
    errors.install(app)
    openapi.install(app)
    for router in ROUTERS:
        app.include_router(router)
    pages.install(app)
    app.mount("/static", StaticFiles(packages=[("sealbox.web", "static")]), name="static")
    # Innermost first: a refused body still gets tus's and the browser's headers.
    app.add_middleware(BodyLimit, routes=routes())
    app.add_middleware(tus.TusHeaders)
    app.add_middleware(BrowserSecurity)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` and ``sealbox serve`` workers."""
    configure_logging()
    return create_app(Settings())
