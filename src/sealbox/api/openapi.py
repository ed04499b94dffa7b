"""The OpenAPI document, exact enough for a fuzzer to hold the server to it.

FastAPI describes what each route declares. What is true of many routes at once is
added here, from the component that makes it true, so no route can forget it:

- credentials: an account's routes take a bearer token *or* the web session cookie; a
  link's routes take an optional unlock grant (a link without a password needs none);
- answers every route can give: 400 for a malformed request (a header, a query or a
  text the server cannot hold), 413 for a body past its cap, 422 for a failed
  validation, 503 while the database or the blob store is unavailable, 403 for a
  cross-site state-changing request;
- tus: the protocol's request headers on every resumable-upload operation, and 412
  for a request that does not speak tus 1.0.0;
- path parameters of every route, the ``OPTIONS`` routes included;
- downloads: the file's own content type, whatever it is.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from sealbox.api.errors import PROBLEM, TITLES
from sealbox.inputs import MAX_INT64

ACCOUNT = "OAuth2PasswordBearer"
SESSION = "SessionCookie"
GRANT = "LinkGrant"
TUS = re.compile(r"^(/api/v1/uploads|/r/\{token\}/uploads)/")
CHANGING = {"post", "put", "patch", "delete"}
COUNT = {"type": "integer", "minimum": 0, "maximum": MAX_INT64}
DESCRIPTIONS = {
    400: "Malformed request: a header, query or text the server cannot take",
    403: "Refused: a cross-site request, or an action this credential may not perform",
    412: "The request does not speak tus 1.0.0",
    413: "The request body is larger than this route accepts",
    422: "The request failed validation",
    503: "The database or the blob store is unavailable; retry later",
}


def _header(name: str, schema: dict[str, Any], required: bool, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "schema": schema, "description": description}


TUS_VERSION = _header("Tus-Resumable", {"type": "string", "enum": ["1.0.0"]}, True, "The tus version spoken")
TUS_CHECKSUM = _header(
    "Upload-Checksum",
    {"type": "string", "pattern": r"^(sha1|sha256) [A-Za-z0-9+/=]+$"},
    False,
    "'<algorithm> <base64 digest>' of this request's body (checksum extension)",
)
TUS_HEADERS: dict[str, list[dict[str, Any]]] = {
    "post": [
        TUS_VERSION,
        _header("Upload-Length", COUNT, True, "The upload's size in bytes"),
        _header("Upload-Metadata", {"type": "string"}, False, "'key base64value' pairs: filename, filetype, uploader"),
        TUS_CHECKSUM,
    ],
    "patch": [
        TUS_VERSION,
        _header("Upload-Offset", COUNT, True, "Where this body starts: the offset the server reported"),
        TUS_CHECKSUM,
    ],
    "head": [TUS_VERSION],
    "delete": [TUS_VERSION],
}
TUS_RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    "post": {
        "Location": {"schema": {"type": "string"}, "description": "The new upload's URL"},
        "Upload-Offset": {"schema": COUNT},
        "Upload-Expires": {"schema": {"type": "string"}},
    },
    "patch": {"Upload-Offset": {"schema": COUNT}, "Upload-Expires": {"schema": {"type": "string"}}},
    "head": {
        "Upload-Offset": {"schema": COUNT},
        "Upload-Length": {"schema": COUNT},
        "Upload-Expires": {"schema": {"type": "string"}},
    },
    "options": {
        "Tus-Version": {"schema": {"type": "string"}},
        "Tus-Extension": {"schema": {"type": "string"}},
        "Tus-Max-Size": {"schema": COUNT},
        "Tus-Checksum-Algorithm": {"schema": {"type": "string"}},
    },
}
OFFSET_BODY = {"content": {"application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}}}


def _problem(status: int) -> dict[str, Any]:
    description = DESCRIPTIONS.get(status, TITLES.get(status, "Error"))
    return {
        "description": description,
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _operation(path: str, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    security = operation.get("security") or []
    names = {name for requirement in security for name in requirement}
    if ACCOUNT in names:
        operation["security"] = [{ACCOUNT: []}, {SESSION: []}]
    elif GRANT in names:
        operation["security"] = [{}, {GRANT: []}]

    declared = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"}
    for name in re.findall(r"\{(\w+)\}", path):
        if name not in declared:
            parameter = {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            operation.setdefault("parameters", []).append(parameter)

    if TUS.match(path) and method in TUS_HEADERS:
        present = {p["name"].lower() for p in operation.get("parameters", [])}
        operation.setdefault("parameters", []).extend(
            dict(p) for p in TUS_HEADERS[method] if p["name"].lower() not in present
        )
        if method == "patch":
            operation["requestBody"] = {"required": True, **OFFSET_BODY}
        elif method == "post":
            operation["requestBody"] = {"required": False, **OFFSET_BODY}
        responses.setdefault("412", _problem(412))
    if TUS.match(path):
        # tus answers with headers only.
        for status, response in responses.items():
            if status.startswith("2"):
                response.pop("content", None)
                response["headers"] = TUS_RESPONSE_HEADERS.get(method, {})

    for code in (400, 413, 422):
        responses.setdefault(str(code), _problem(code))
    if path != "/healthz":
        responses.setdefault("503", _problem(503))
    if method in CHANGING or (TUS.match(path) and method != "options"):
        # Cross-site refusals; and a resumable upload, even its HEAD, is a write workflow:
        # a read-only token is refused there too.
        responses.setdefault("403", _problem(403))

    # A file's bytes, in its own content type: also a link's file and archive.
    if path.endswith(("/content", "/download", "/archive")) or path.startswith(("/download/", "/s/{token}/files/")):
        for status in ("200", "206"):
            if status in responses:
                responses[status]["content"] = {"*/*": {"schema": {"type": "string", "format": "binary"}}}


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


# A link's URL is the same for a browser and a client, so the pages' password forms share
# their paths with the API: they are declared too, and ``Allow`` lists every method.
LINK_FORM: dict[str, Any] = {
    "summary": "Unlock the link in a browser (the page's password form)",
    "description": "Sets the link's grant cookie and redirects to the link's page; answers HTML.",
    "tags": ["links"],
    "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}],
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "properties": {"password": {"type": "string"}}}
            }
        },
    },
    "responses": {
        "303": {
            "description": "Unlocked: on to the link's page",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        "401": _html("Wrong password"),
        "404": _html("No such link"),
        "410": _html("The link is revoked, expired or used up"),
        "429": _html("Too many wrong passwords"),
    },
}


def build(app: FastAPI) -> dict[str, Any]:
    """The application's OpenAPI document (cached on the app, like FastAPI's own)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes
    )
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SESSION] = {
        "type": "apiKey",
        "in": "cookie",
        "name": "sealbox_session",
        "description": "The web interface's session (only a web session's token is accepted here)",
    }
    paths = document.setdefault("paths", {})
    for path in ("/s/{token}", "/r/{token}"):
        paths.setdefault(path, {})["post"] = {**LINK_FORM, "operationId": f"unlock_form_{path[1]}"}
    for path, operations in paths.items():
        for method, operation in operations.items():
            _operation(path, method, operation)
    app.openapi_schema = document
    return document


def install(app: FastAPI) -> None:
    app.openapi = lambda: build(app)  # type: ignore[method-assign]
