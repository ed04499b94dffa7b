"""How every command prints: strings as given, never read as Rich markup.

Kept apart from ``common`` so the client commands import nothing of the server side.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text


def console(*, stderr: bool = False) -> Console:
    """A console that prints every string as given: no Rich markup, emoji codes or
    highlighting, because the strings include names other people chose (an anonymous
    uploader's ``[white on white]...`` must show, not hide text). soft_wrap: messages are
    single lines that logs and tests can match, not wrapped at 80."""
    return Console(stderr=stderr, soft_wrap=True, markup=False, emoji=False, highlight=False)


def labelled(label: str, style: str, message: str) -> Text:
    """``label`` in ``style``, then ``message`` as plain text."""
    return Text.assemble((label, style), " ", message)
