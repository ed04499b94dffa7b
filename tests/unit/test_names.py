from __future__ import annotations

import pytest

from sealbox.errors import InvalidInput
from sealbox.files.names import check_content_type, check_name


@pytest.mark.parametrize("name", ["report.pdf", "été 2026.txt", "..hidden", "a" * 255, "名前.png", "x y (1).tar.gz"])
def test_acceptable_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "required"),
        ("a" * 256, "at most 255"),
        ("a\x00b", "control"),
        ("a\nb", "control"),
        ("a\x7fb", "control"),
        ("invoice\u202efdp.exe", "control"),
        ("../etc/passwd", "'/'"),
        ("a\\b", "'/'"),
        ("..", "'/'"),
    ],
)
def test_rejected_names(name: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_name(name)


def test_content_types() -> None:
    assert check_content_type(None, "a.pdf") == "application/pdf"
    assert check_content_type("", "noext") == "application/octet-stream"
    assert check_content_type('text/plain; charset="utf-8"', "a") == 'text/plain; charset="utf-8"'
    for bad in ["text", "text/plain\r\nX-Evil: 1", "a/b; c", "<b>/x"]:
        with pytest.raises(InvalidInput):
            check_content_type(bad, "a")
