"""The alert service's rules follow edits of their files and folders; a broken edit keeps the last
good rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from finlake.contracts.resources import ResourceError
from finlake_alerting.rules import RuleBook
from tests.unit.finlake.test_alert_rule import RULE


def touch_later(path: Path, text: str) -> None:
    # mtime granularity can be coarse: move it on explicitly so the change is seen.
    before = path.stat().st_mtime if path.exists() else 0.0
    path.write_text(text)
    os.utime(path, (before + 5, before + 5))


def test_a_folder_of_rules_is_reloaded_when_a_file_changes_or_appears(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    first = folder / "a.yaml"
    first.write_text(RULE)
    book = RuleBook([folder])
    book.load()
    assert book.get("aapl-breakout") is not None
    assert not book.reload_if_changed()  # nothing changed
    touch_later(folder / "b.yaml", RULE.replace("aapl-breakout", "msft-breakout"))
    assert book.reload_if_changed()
    assert book.get("msft-breakout") is not None
    touch_later(first, RULE.replace("level: 200", "level: 250"))
    assert book.reload_if_changed()
    rule = book.get("aapl-breakout")
    assert rule is not None
    assert rule.condition.level == 250


def test_a_broken_edit_keeps_the_last_good_rules_and_a_fix_is_picked_up(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULE)
    book = RuleBook([path])
    book.load()
    touch_later(path, RULE.replace("level: 200", "level: -1"))
    assert not book.reload_if_changed()
    kept = book.get("aapl-breakout")
    assert kept is not None
    assert kept.condition.level == 200
    assert not book.reload_if_changed()  # the same broken file is not retried
    touch_later(path, RULE.replace("level: 200", "level: 300"))
    assert book.reload_if_changed()
    fixed = book.get("aapl-breakout")
    assert fixed is not None
    assert fixed.condition.level == 300


def test_a_broken_file_at_start_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULE.replace("level: 200", "level: -1"))
    with pytest.raises(ResourceError, match="level"):
        RuleBook([path]).load()
