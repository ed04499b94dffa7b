"""docs/cli.md shows the real --help of every client command; this test keeps it in step.

Regenerate with ``python -m tests.docs.test_cli_reference``.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.docs.test_reference import help_text

DOC = Path(__file__).parents[2] / "docs" / "cli.md"
BLOCK = re.compile(r"(<!-- commands: generated -->\n)(.*?)(<!-- end -->)", re.DOTALL)
COMMANDS = [
    ["login"], ["whoami"], ["upload"], ["download"], ["mkdir"], ["mv"], ["ls"], ["rm"],
    ["share", "create"], ["share", "list"], ["share", "revoke"], ["request", "create"],
]  # fmt: skip


def rendered(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + help_text(COMMANDS) + m.group(3), text)


def test_cli_reference_is_current() -> None:
    text = DOC.read_text()
    assert len(BLOCK.findall(text)) == 1
    assert text == rendered(text), "run: python -m tests.docs.test_cli_reference"


if __name__ == "__main__":
    DOC.write_text(rendered(DOC.read_text()))
