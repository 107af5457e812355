"""The durable state under $FINLAKE_HOME: delivery log keyed by (event id, target), decisions,
cooldowns and silences, in one SQLite file (WAL: a killed process loses no committed row)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from finlake.contracts.alert_rule import ChannelType, SecretRef
from finlake_alerting.routing import Plan, Target
from finlake_alerting.silences import Silence

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    event_id TEXT NOT NULL, target TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, detail TEXT NOT NULL DEFAULT '', updated_at TEXT NOT NULL,
    PRIMARY KEY (event_id, target));
CREATE TABLE IF NOT EXISTS decisions (
    event_id TEXT PRIMARY KEY, rule TEXT NOT NULL, symbol TEXT NOT NULL,
    targets TEXT NOT NULL, suppressed_by TEXT, decided_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cooldowns (
    rule TEXT NOT NULL, symbol TEXT NOT NULL, notified_at TEXT NOT NULL,
    PRIMARY KEY (rule, symbol));
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY, body TEXT NOT NULL, ends_at TEXT NOT NULL,
    announced INTEGER NOT NULL DEFAULT 0, suppressed INTEGER NOT NULL DEFAULT 0);
"""


class Status(StrEnum):
    """Where one (event, target) delivery is."""

    SENDING = "sending"
    """An attempt started; if the process dies now, the outcome is unknown (in doubt)."""
    FAILED = "failed"
    """The last attempt failed (known not delivered); it will be retried."""
    DELIVERED = "delivered"
    DEAD_LETTERED = "dead_lettered"


FINAL = (Status.DELIVERED, Status.DEAD_LETTERED)


def _target_json(target: Target) -> dict[str, object]:
    ref = target.secret_ref.model_dump() if target.secret_ref else None
    return {"type": target.type.value, "to": list(target.to), "secret_ref": ref}


def _target_of(data: dict[str, object]) -> Target:
    ref = data.get("secret_ref")
    to = data.get("to") or []
    assert isinstance(to, list)
    return Target(
        ChannelType(str(data["type"])),
        tuple(str(a) for a in to),
        SecretRef.model_validate(ref) if ref else None,
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()


class StateStore:
    """Thread-safe access to the state file (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process (not a power cut) without an fsync per row.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    # -- decisions and cooldowns ---------------------------------------------------------------

    def decision(self, event_id: str) -> Plan | None:
        """The plan decided for this event before (a redelivery reuses it), if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT targets, suppressed_by FROM decisions WHERE event_id = ?", (event_id,)
            ).fetchone()
        if row is None:
            return None
        return Plan(tuple(_target_of(t) for t in json.loads(row[0])), row[1])

    def last_notified(self, rule: str, symbol: str) -> datetime | None:
        """When (event time) the rule last notified for the symbol."""
        with self._lock:
            row = self._db.execute(
                "SELECT notified_at FROM cooldowns WHERE rule = ? AND symbol = ?", (rule, symbol)
            ).fetchone()
        return datetime.fromisoformat(row[0]) if row else None

    def record_decision(
        self, event_id: str, rule: str, symbol: str, fired_at: datetime, plan: Plan
    ) -> None:
        """Store the plan; a notifying plan also starts the (rule, symbol) cooldown."""
        targets = json.dumps([_target_json(t) for t in plan.targets])
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR IGNORE INTO decisions VALUES (?, ?, ?, ?, ?, ?)",
                (event_id, rule, symbol, targets, plan.suppressed_by, _now()),
            )
            if plan.notifies:
                self._db.execute(
                    "INSERT INTO cooldowns VALUES (?, ?, ?) ON CONFLICT (rule, symbol) DO UPDATE "
                    "SET notified_at = MAX(notified_at, excluded.notified_at)",
                    (rule, symbol, fired_at.astimezone(UTC).isoformat()),
                )
            if plan.suppressed_by and plan.suppressed_by.startswith("silence:"):
                self._db.execute(
                    "UPDATE silences SET suppressed = suppressed + 1 WHERE id = ?",
                    (plan.suppressed_by.removeprefix("silence:"),),
                )

    # -- the delivery log ----------------------------------------------------------------------

    def statuses(self, event_id: str, targets: Sequence[Target] = ()) -> dict[str, Status]:
        """Target key -> status of every delivery of the event recorded so far.

        A row an older version wrote under a target's ``legacy_key`` counts for that target when
        no other of the event's ``targets`` shares the legacy key (then it can only be its row),
        so an upgrade sends nothing twice.
        """
        with self._lock:
            rows = self._db.execute(
                "SELECT target, status FROM deliveries WHERE event_id = ?", (event_id,)
            ).fetchall()
        found = {target: Status(status) for target, status in rows}
        legacy = Counter(t.legacy_key for t in targets)
        for target in targets:
            old = found.get(target.legacy_key)
            if target.key not in found and old is not None and legacy[target.legacy_key] == 1:
                found[target.key] = old
        return found

    def mark(
        self, event_ids: Iterable[str], target: str, status: Status, *, attempts: int = 0,
        detail: str = "",
    ) -> None:  # fmt: skip
        """Record the status of the target's delivery of each event (one transaction)."""
        now = _now()
        rows = [(event_id, target, status.value, attempts, detail, now) for event_id in event_ids]
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id, target) "
                "DO UPDATE SET status = excluded.status, attempts = excluded.attempts, "
                "detail = excluded.detail, updated_at = excluded.updated_at",
                rows,
            )

    def counts(self) -> dict[str, int]:
        """Deliveries per status (for the status endpoint)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT status, COUNT(*) FROM deliveries GROUP BY status"
            ).fetchall()
        return dict(rows)

    # -- silences ------------------------------------------------------------------------------

    def add_silence(self, silence: Silence) -> None:
        """Store a new silence."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO silences (id, body, ends_at) VALUES (?, ?, ?)",
                (silence.id, silence.model_dump_json(), silence.ends_at.isoformat()),
            )

    def silences(self) -> list[Silence]:
        """Every stored silence, with how many events each suppressed."""
        with self._lock:
            rows = self._db.execute("SELECT body, suppressed FROM silences").fetchall()
        return [
            Silence.model_validate_json(body).model_copy(update={"suppressed": suppressed})
            for body, suppressed in rows
        ]

    def expire_silence(self, silence_id: str, now: datetime) -> Silence | None:
        """End a silence now (if it has not ended yet); None if there is no such silence."""
        with self._lock, self._db:
            row = self._db.execute(
                "SELECT body, suppressed FROM silences WHERE id = ?", (silence_id,)
            ).fetchone()
            if row is None:
                return None
            # The count is kept in its own column, not in the body.
            silence = Silence.model_validate_json(row[0]).model_copy(update={"suppressed": row[1]})
            if silence.ends_at > now:
                silence = silence.model_copy(
                    update={"ends_at": now, "starts_at": min(silence.starts_at, now)}
                )
                self._db.execute(
                    "UPDATE silences SET body = ?, ends_at = ? WHERE id = ?",
                    (silence.model_dump_json(), now.isoformat(), silence_id),
                )
        return silence

    def unannounced_expired(self, now: datetime) -> list[Silence]:
        """Silences that ended and whose end was not announced yet."""
        return [s for s in self.silences() if s.ends_at <= now and not self._announced(s.id)]

    def _announced(self, silence_id: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT announced FROM silences WHERE id = ?", (silence_id,)
            ).fetchone()
        return bool(row and row[0])

    def mark_announced(self, silence_id: str) -> None:
        """The silence's expiry notice was delivered or dead-lettered."""
        with self._lock, self._db:
            self._db.execute("UPDATE silences SET announced = 1 WHERE id = ?", (silence_id,))
