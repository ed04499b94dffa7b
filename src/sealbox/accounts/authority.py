"""The one authority for actions (DESIGN promise 8): whether a credential counts where it
was presented, and whether its holder may perform an action.

Every surface asks here through one dependency (``sealbox.web.auth``): the JSON API, the
web pages, tus and the seed routes. Nothing else looks at a token's kind or scope.

1. ``accepts``: a credential is accepted only where its kind belongs. A web session's
   token is accepted only as the ``sealbox_session`` cookie; a login or personal token
   only as ``Authorization: Bearer``. A personal token planted in the session cookie is
   no credential at all, so a read-only token can never borrow a browser's full rights.
2. ``authorise``: ``READ`` actions change nothing and are open to every scope; ``WRITE``
   actions need a full-scope credential; ``ADMIN`` actions also need an administrator.

Which item an action may touch is decided one level down, by the owner: the gate for
file bytes (``sealbox.sharing.gate``), and the services' owner-scoped queries for
everything else, where someone else's item is ``NotFound`` like a missing one. Link
holders (a share or upload-request token, with its grant when it has a password) never
reach this module: the gate and ``SharingService.live_request`` decide for them.
"""

from __future__ import annotations

import enum
from typing import Literal

from sealbox.accounts.schemas import Principal
from sealbox.errors import PermissionDenied

Presented = Literal["cookie", "bearer"]


class Action(enum.Enum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


def accepts(presented: Presented, kind: str) -> bool:
    """Whether a token of ``kind`` counts when it arrives as ``presented``."""
    return (kind == "session") == (presented == "cookie")


def authorise(principal: Principal, action: Action) -> None:
    """Raise ``PermissionDenied`` unless ``principal`` may perform ``action``."""
    if action is Action.READ:
        return
    if principal.scope != "full":
        raise PermissionDenied("this token is read-only")
    if action is Action.ADMIN and not principal.is_admin:
        raise PermissionDenied("administrators only")
