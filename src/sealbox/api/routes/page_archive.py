"""The files page's "Download as ZIP": a form post of the chosen items (refused from
another site like every post, by ``web.security``) answered with one streamed ZIP, by the
same gate method and response as ``POST /api/v1/archive``.

It lives among the API's routes because the archive response is theirs (``web`` never
imports ``api``, as for the link pages in ``links.py``); the form is read and checked by
the pages' own helpers.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from sealbox.api.deps import RuntimeDep, actor_of
from sealbox.api.downloads import archive_response
from sealbox.web.auth import PageUser
from sealbox.web.browse import selection_or_page

router = APIRouter(include_in_schema=False)


@router.post("/files/archive")
async def archive_selection(request: Request, runtime: RuntimeDep, user: PageUser) -> Response:
    """The chosen files and folders of the signed-in account as one ZIP (folders with
    everything in them); an empty or malformed selection gets the listing again."""
    chosen = await selection_or_page(request, user)
    if isinstance(chosen, Response):
        return chosen
    archive = await runtime.gate.own_archive(user.user_id, chosen.items, actor_of(request, user))
    return await archive_response(request, archive)
