"""Every event an account's activity page can show has a label there: the actions are
read from the source (every ``Event("…")``), so a new event without one fails here."""

from __future__ import annotations

import re
from pathlib import Path

from sealbox.web.pages import ACTIONS

SOURCE = Path(__file__).parents[2] / "src" / "sealbox"
# Operator events (keys, accounts managed by an administrator): not on the activity page.
OPERATOR = ("key.", "user.")


def recorded_actions() -> set[str]:
    found: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        found.update(re.findall(r'Event\(\s*"([a-z_]+\.[a-z_]+)"', path.read_text()))
    return found


def test_every_account_event_has_a_label_on_the_activity_page() -> None:
    actions = recorded_actions()
    assert {"folder.create", "folder.delete", "file.archive", "share.archive"} <= actions
    missing = sorted(a for a in actions if not a.startswith(OPERATOR) and a not in ACTIONS)
    assert missing == []
