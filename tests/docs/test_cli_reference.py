"""docs/cli.md shows the real --help of every client command; this test keeps it in step.

Regenerate with ``python -m tests.docs.test_cli_reference``.
"""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from sealbox.cli.main import app

DOC = Path(__file__).parents[2] / "docs" / "cli.md"
BLOCK = re.compile(r"(<!-- commands: generated -->\n)(.*?)(<!-- end -->)", re.DOTALL)
COMMANDS = [
    ["login"], ["whoami"], ["upload"], ["download"], ["ls"], ["rm"],
    ["share", "create"], ["share", "list"], ["share", "revoke"], ["request", "create"],
]  # fmt: skip


def help_text() -> str:
    runner = CliRunner()
    parts = []
    for command in COMMANDS:
        result = runner.invoke(
            app, [*command, "--help"], prog_name="sealbox", terminal_width=100, env={"COLUMNS": "100", "NO_COLOR": "1"}
        )
        assert result.exit_code == 0, result.output
        lines = [line.rstrip() for line in result.output.splitlines()]
        parts.append("```text\n" + "\n".join(lines).strip("\n") + "\n```\n")
    return "\n".join(parts)


def rendered(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + help_text() + m.group(3), text)


def test_cli_reference_is_current() -> None:
    text = DOC.read_text()
    assert len(BLOCK.findall(text)) == 1
    assert text == rendered(text), "run: python -m tests.docs.test_cli_reference"


if __name__ == "__main__":
    DOC.write_text(rendered(DOC.read_text()))
