"""The ``sealbox`` program: the client commands on their own, everything else in full.

A client command (``sealbox ls``, ``upload``, ``download``…) needs only the SDK, Typer and
Rich; importing the server side as well (SQLAlchemy, the domains, the runtime) cost about
2.5 s of CPU before every one of them. The operator commands, ``--help`` and anything
unknown go to the whole program (``sealbox.cli.main``), which holds the client commands
too, so its help lists everything.
"""

from __future__ import annotations

import os
import sys

CLIENT_COMMANDS = frozenset({"login", "whoami", "upload", "download", "mkdir", "mv", "ls", "rm", "share", "request"})


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in CLIENT_COMMANDS:
        import typer

        from sealbox.cli.client import install

        os.umask(0o077)  # profiles and state are for their user only
        app = typer.Typer(help="sealbox: share files, encrypted at rest.", no_args_is_help=True, add_completion=False)
        install(app)
        app()
        return
    from sealbox.cli.main import main as everything

    everything()
