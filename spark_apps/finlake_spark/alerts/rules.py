"""The active AlertRules: loaded from files or folders, handed to the Spark workers as a snapshot.

The driver re-reads the rule files at the start of every micro-batch. A valid set is written
atomically to a JSON snapshot that the stateful processor's workers read (cached by mtime), so
every task of one micro-batch sees the same rules; an invalid edit keeps the previous set and is
reported once per change (log line + metric), never crashing the stream.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from finlake.contracts.alert_rule import KIND, AlertRuleSpec
from finlake.contracts.resources import ResourceError, load_resources, spec_files
from finlake.errors import ConfigurationError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActiveRule:
    """One rule the detector evaluates; ``fingerprint`` changes when its evaluation changes."""

    name: str
    spec: AlertRuleSpec
    fingerprint: str

    @classmethod
    def of(cls, name: str, spec: AlertRuleSpec) -> ActiveRule:
        """The rule with its fingerprint (condition, for, fire mode and bar)."""
        evaluated = spec.model_dump(
            mode="json", by_alias=True, include={"condition", "for_", "fire", "bar"}
        )
        digest = hashlib.sha256(json.dumps(evaluated, sort_keys=True).encode()).hexdigest()
        return cls(name, spec, digest[:16])


def load_rules(paths: Sequence[Path]) -> list[ActiveRule]:
    """Every active (not paused) AlertRule in ``paths``; raises ResourceError on any problem."""
    if not paths:
        raise ConfigurationError(
            "no alert rule files: pass --rules PATH or set FINLAKE_DETECTION__RULES"
        )
    files = spec_files(paths)
    if not files:
        raise ConfigurationError(f"no *.yaml rule files in {', '.join(map(str, paths))}")
    resources = load_resources(files, kind=KIND)
    return [ActiveRule.of(r.name, r.spec) for r in resources if not r.paused]


def snapshot_text(rules: Sequence[ActiveRule]) -> str:
    """The JSON the workers read: names and wire specs."""
    return json.dumps([{"name": r.name, "spec": r.spec.wire()} for r in rules], sort_keys=True)


def parse_snapshot(text: str) -> list[ActiveRule]:
    """Rules from :func:`snapshot_text` output."""
    return [
        ActiveRule.of(item["name"], AlertRuleSpec.model_validate(item["spec"]))
        for item in json.loads(text)
    ]


class RuleSource:
    """The driver side: re-reads the rule files and publishes valid sets as the snapshot."""

    def __init__(self, paths: Sequence[Path], snapshot: Path) -> None:
        self.paths = list(paths)
        self.snapshot = snapshot
        self.rules: list[ActiveRule] = []
        self.problem: str | None = None

    def refresh(self) -> bool:
        """Reload; True when the snapshot changed. An invalid set keeps the previous rules."""
        try:
            rules = load_rules(self.paths)
        except (ResourceError, ConfigurationError) as error:
            if str(error) != self.problem:
                log.error("alert rules not reloaded, keeping the previous ones: %s", error)
            self.problem = str(error)
            if not self.snapshot.exists():
                raise
            return False
        self.problem = None
        text = snapshot_text(rules)
        if self.snapshot.exists() and self.snapshot.read_text() == text:
            self.rules = rules
            return False
        self.snapshot.parent.mkdir(parents=True, exist_ok=True)
        partial = self.snapshot.with_suffix(".tmp")
        partial.write_text(text)
        os.replace(partial, self.snapshot)
        if self.rules:
            log.info("alert rules reloaded: %s", ", ".join(r.name for r in rules) or "none")
        self.rules = rules
        return True


class RuleSnapshot:
    """The worker side: the snapshot's rules, re-parsed only when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._rules: list[ActiveRule] = []

    def rules(self) -> list[ActiveRule]:
        """The current rules."""
        status = self.path.stat()
        stamp = (status.st_mtime_ns, status.st_size)
        if stamp != self._stamp:
            self._rules = parse_snapshot(self.path.read_text())
            self._stamp = stamp
        return self._rules

    def rules_for(self, symbol: str) -> list[ActiveRule]:
        """The rules that watch ``symbol``."""
        return [rule for rule in self.rules() if rule.spec.matches(symbol)]
