"""The AlertRule files the detection job reads too: loaded at start, reloaded when they change."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from finlake.contracts import alert_rule
from finlake.contracts.alert_rule import AlertRuleSpec
from finlake.contracts.resources import ResourceError, load_resources, spec_files

log = logging.getLogger(__name__)


class RuleBook:
    """Rule name -> spec; a broken edit keeps the last good rules (and is logged)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        self._rules: dict[str, AlertRuleSpec] = {}
        self._stamp: tuple[tuple[str, float], ...] = ()

    def _mtimes(self) -> tuple[tuple[str, float], ...]:
        # Folders by their files: an added, removed or edited rule file is a change.
        return tuple(
            (str(p), p.stat().st_mtime if p.exists() else -1.0) for p in spec_files(self.paths)
        )

    def load(self) -> None:
        """Load every file; raises ResourceError (one line per problem) if any is invalid."""
        stamp = self._mtimes()
        resources = load_resources(self.paths, kind=alert_rule.KIND) if self.paths else []
        self._rules = {r.name: r.spec for r in resources}
        self._stamp = stamp

    def reload_if_changed(self) -> bool:
        """Reload when a file's mtime changed; True when new rules are in force."""
        if self._mtimes() == self._stamp:
            return False
        try:
            self.load()
        except ResourceError as error:
            self._stamp = self._mtimes()  # report each broken edit once
            log.error("rule files not reloaded, keeping the previous rules: %s", error)
            return False
        log.info("rules reloaded", extra={"rules": sorted(self._rules)})
        return True

    def get(self, name: str) -> AlertRuleSpec | None:
        """The rule called ``name``, if loaded."""
        return self._rules.get(name)

    def __len__(self) -> int:
        return len(self._rules)
