"""Reference tables in docs/ are generated from the code; this test keeps them in step.

Regenerate with ``python -m tests.docs.test_reference``.
"""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from sealbox.cli.main import app
from sealbox.config import S3Settings, Settings

OPERATIONS = Path(__file__).parents[2] / "docs" / "operations.md"
BLOCK = re.compile(r"(<!-- (settings|commands): generated -->\n)(.*?)(<!-- end -->)", re.DOTALL)


def settings_table() -> str:
    rows = ["| variable | meaning |", "| --- | --- |"]
    for name, field in Settings.model_fields.items():
        if name == "s3":
            for sub, sub_field in S3Settings.model_fields.items():
                rows.append(f"| `SEALBOX_S3__{sub.upper()}` | {sub_field.description} |")
            continue
        rows.append(f"| `SEALBOX_{name.upper()}` | {field.description} |")
    return "\n".join(rows) + "\n"


def help_text(commands: list[list[str]]) -> str:
    """The --help of each command, as ``sealbox`` prints it at 100 columns, in code blocks."""
    runner = CliRunner()
    parts = []
    for command in commands:
        result = runner.invoke(
            app, [*command, "--help"], prog_name="sealbox", terminal_width=100, env={"COLUMNS": "100", "NO_COLOR": "1"}
        )
        assert result.exit_code == 0, result.output
        lines = [line.rstrip() for line in result.output.splitlines()]
        parts.append("```text\n" + "\n".join(lines).strip("\n") + "\n```\n")
    return "\n".join(parts)


def commands_text() -> str:
    commands = [["serve"], ["init"], ["db", "upgrade"], ["storage", "migrate"]]
    commands += [["user", name] for name in ("add", "list", "disable", "enable", "reset-password", "delete")]
    commands += [
        ["keys", name] for name in ("status", "stage", "promote", "rotate", "rewrap", "retire", "export", "import")
    ]
    commands += [["audit", name] for name in ("list", "verify")]
    return help_text(commands)


def rendered(text: str) -> str:
    generated = {"settings": settings_table(), "commands": commands_text()}
    return BLOCK.sub(lambda m: m.group(1) + generated[m.group(2)] + m.group(4), text)


def test_operations_reference_is_current() -> None:
    text = OPERATIONS.read_text()
    assert len(BLOCK.findall(text)) == 2
    assert text == rendered(text), "run: python -m tests.docs.test_reference"


if __name__ == "__main__":
    OPERATIONS.write_text(rendered(OPERATIONS.read_text()))
