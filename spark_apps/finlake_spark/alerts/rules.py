"""The active AlertRules: loaded from files or folders, handed to the Spark tasks with each job.

The driver re-reads the rule files at the start of every micro-batch (in a cluster: the rules
ConfigMap the operator mounts into the driver only). The valid set travels to the stateful
processor as a local property of the micro-batch's job (:func:`share_rules`): Spark sends a job's
local properties with each of its tasks, so every task of one micro-batch sees the same rules,
on whichever executor (pod) it runs, and no worker reads a file of the driver's disk. The workers
parse a set once per process (:class:`TaskRules`). The driver also keeps the set in a JSON
snapshot file, so that a restart with an invalid edit carries on with the last valid rules; an
invalid edit keeps the previous set and is reported once per change (log line + metric), never
crashing the stream.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pyspark import TaskContext
from pyspark.sql import SparkSession

from finlake.contracts.alert_rule import KIND, AlertRuleSpec
from finlake.contracts.resources import Problem, ResourceError, load_resources, spec_files
from finlake.errors import ConfigurationError

log = logging.getLogger(__name__)
RULES_PROPERTY = "finlake.alerts.rules"
"""The local property that carries the rule set to the tasks of a micro-batch (zlib, base64)."""


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


def load_rules(paths: Sequence[Path], *, allow_none: bool = False) -> list[ActiveRule]:
    """Every active (not paused) AlertRule in ``paths``; raises ResourceError on any problem.

    ``allow_none``: folders without any rule file are no rules, not an error (the operator's
    mount of the namespace's rules ConfigMap before its first AlertRule).
    """
    if not paths:
        raise ConfigurationError(
            "no alert rule files: pass --rules PATH or set FINLAKE_DETECTION__RULES"
        )
    files = spec_files(paths)
    if not files and allow_none and all(Path(path).is_dir() for path in paths):
        return []
    if not files:
        raise ConfigurationError(f"no *.yaml rule files in {', '.join(map(str, paths))}")
    resources = load_resources(files, kind=KIND)
    namespaces: dict[str, list[str]] = {}
    for resource in resources:
        namespaces.setdefault(resource.name, []).append(resource.metadata.namespace)
    clashes = sorted((name, spaces) for name, spaces in namespaces.items() if len(spaces) > 1)
    if clashes:  # the detector keys its state and event ids by rule name
        raise ResourceError(
            [
                Problem(f"{KIND}/{name}", f"in namespaces {', '.join(sorted(spaces))}: one "
                        "detector needs each rule name once")
                for name, spaces in clashes
            ]
        )  # fmt: skip
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


def encode_rules(text: str) -> str:
    """A snapshot as the value of :data:`RULES_PROPERTY` (compressed: it goes with every task)."""
    return base64.b64encode(zlib.compress(text.encode(), 6)).decode("ascii")


def decode_rules(value: str) -> str:
    """The snapshot text of a :data:`RULES_PROPERTY` value."""
    return zlib.decompress(base64.b64decode(value)).decode()


def share_rules(spark: SparkSession, text: str) -> None:
    """Make ``text`` the rules of the jobs this thread submits from now on (the next
    micro-batch's: the detection sink calls it on the query's thread before its one action)."""
    spark.sparkContext.setLocalProperty(RULES_PROPERTY, encode_rules(text))


class RuleSource:
    """The driver side: re-reads the rule files and keeps the last valid set (and its snapshot)."""

    def __init__(self, paths: Sequence[Path], snapshot: Path, *, allow_none: bool = False) -> None:
        self.paths = list(paths)
        self.snapshot = snapshot
        self.allow_none = allow_none
        self.rules: list[ActiveRule] = []
        self.text: str | None = None
        self.problem: str | None = None

    def refresh(self) -> bool:
        """Reload; True when the set changed. An invalid set keeps the previous rules (after a
        restart: the snapshot's); with neither, the error propagates."""
        try:
            rules = load_rules(self.paths, allow_none=self.allow_none)
        except (ResourceError, ConfigurationError) as error:
            if str(error) != self.problem:
                log.error("alert rules not reloaded, keeping the previous ones: %s", error)
            self.problem = str(error)
            if self.text is None:
                if not self.snapshot.exists():
                    raise
                self.text = self.snapshot.read_text()
                self.rules = parse_snapshot(self.text)
            return False
        self.problem = None
        text = snapshot_text(rules)
        if text == self.text:
            self.rules = rules
            return False
        if not self.snapshot.exists() or self.snapshot.read_text() != text:
            self.snapshot.parent.mkdir(parents=True, exist_ok=True)
            partial = self.snapshot.with_suffix(".tmp")
            partial.write_text(text)
            os.replace(partial, self.snapshot)
        if self.text is not None:
            log.info("alert rules reloaded: %s", ", ".join(r.name for r in rules) or "none")
        self.rules, self.text = rules, text
        return True


class TaskRules:
    """The worker side: the rules the running task carries (its job's :data:`RULES_PROPERTY`),
    parsed once per set and worker process."""

    _parsed: tuple[str, list[ActiveRule]] | None = None

    def rules(self) -> list[ActiveRule]:
        """The current task's rules."""
        context = TaskContext.get()
        value = context.getLocalProperty(RULES_PROPERTY) if context is not None else None
        if value is None:
            raise RuntimeError(
                f"no alert rules in this task (local property {RULES_PROPERTY}): the detection "
                "sink shares them before each micro-batch runs"
            )
        cached = TaskRules._parsed
        if cached is None or cached[0] != value:
            cached = (value, parse_snapshot(decode_rules(value)))
            TaskRules._parsed = cached
        return cached[1]

    def rules_for(self, symbol: str) -> list[ActiveRule]:
        """The rules that watch ``symbol``."""
        return [rule for rule in self.rules() if rule.spec.matches(symbol)]
