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
# A form that carries a selection (one field per item chosen): the most items one action
# takes, plus room for the form's other fields.
MAX_SELECTION = 1000
MAX_SELECTION_FIELDS = MAX_SELECTION + MAX_FIELDS


def _pairs(body: bytes, max_fields: int) -> list[tuple[str, str]]:
    try:
        return parse_qsl(
            body.decode(), keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=max_fields
        )
    except UnicodeDecodeError:
        raise InvalidInput("the form is not valid UTF-8") from None
    except ValueError:
        raise InvalidInput(f"a form may have at most {max_fields} fields") from None


def parse_form(body: bytes) -> dict[str, str]:
    """The fields of an urlencoded ``body`` (the first value of each name).

    Raises ``InvalidInput`` if the body, or a percent-encoded value, is not UTF-8, or if
    it has more than ``MAX_FIELDS`` fields; nothing else.
    """
    fields: dict[str, str] = {}
    for name, value in _pairs(body, MAX_FIELDS):
        fields.setdefault(name, value)
    return fields


def parse_selection_form(body: bytes) -> tuple[dict[str, str], list[str]]:
    """The fields of an urlencoded ``body`` that carries a selection: the first value of
    each name, and every value of ``item``, in order.

    Raises ``InvalidInput`` as ``parse_form`` does, with ``MAX_SELECTION_FIELDS`` fields.
    """
    fields: dict[str, str] = {}
    items: list[str] = []
    for name, value in _pairs(body, MAX_SELECTION_FIELDS):
        if name == "item":
            items.append(value)
        else:
            fields.setdefault(name, value)
    return fields, items


async def read_form(request: Request) -> dict[str, str]:
    """The request's urlencoded form (see ``parse_form``)."""
    return parse_form(await request.body())


async def read_selection_form(request: Request) -> tuple[dict[str, str], list[str]]:
    """The request's urlencoded form with its selection (see ``parse_selection_form``)."""
    return parse_selection_form(await request.body())
