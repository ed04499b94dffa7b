"""The server process: ``python -m sealbox.api.server [uvicorn options]``.

``sealbox serve`` replaces itself with this; it runs uvicorn exactly as ``python -m
uvicorn`` would. What it adds is memory: the server writes JSON logs only, yet structlog
imports ``rich`` (and through it ``pygments``) whenever it is installed, for a console
renderer the server never uses; the CLI installs it. Marking it absent here, before
anything is imported, keeps about 4 MiB out of every worker (docs/deploy.md, "Memory").
This module is the main module of the process, so uvicorn's worker processes (started
with ``spawn``) run it too before they import the app.
"""

import sys

# Never imported by the server's own code; only structlog's optional development
# renderer would pull it in. ``setdefault``: an embedding process that has it keeps it.
sys.modules.setdefault("rich", None)  # type: ignore[arg-type]  # None: "not installed"

if __name__ == "__main__":
    from uvicorn.main import main

    main()
