"""Urlencoded forms, for the pages and the API's sign-in route alike.

The body itself is bounded before it gets here (``sealbox.api.limits`` caps every small
body while reading it); this module only parses.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import Request

from sealbox.errors import InvalidInput

FORM = "application/x-www-form-urlencoded"
MAX_FIELDS = 64


def parse_form(body: bytes) -> dict[str, str]:
    """The fields of an urlencoded ``body`` (the first value of each name).

    Raises ``InvalidInput`` if the body, or a percent-encoded value, is not UTF-8, or if
    it has more than ``MAX_FIELDS`` fields; nothing else.
    """
    try:
        pairs = parse_qsl(
            body.decode(), keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=MAX_FIELDS
        )
    except UnicodeDecodeError:
        raise InvalidInput("the form is not valid UTF-8") from None
    except ValueError:
        raise InvalidInput(f"a form may have at most {MAX_FIELDS} fields") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


async def read_form(request: Request) -> dict[str, str]:
    """The request's urlencoded form (see ``parse_form``)."""
    return parse_form(await request.body())
