"""The state file: delivery-log rows of older versions, silences and their counts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from finlake.contracts.alert_rule import Channel
from finlake_alerting.routing import Target
from finlake_alerting.store import StateStore, Status


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    state = StateStore(tmp_path / "state.db")
    yield state
    state.close()


def _slack(key: str | None = None) -> Target:
    ref = {"name": "slack"} | ({"key": key} if key else {})
    return Target.of(Channel.model_validate({"type": "slack", "secretRef": ref}))


def test_a_row_under_an_older_key_counts_for_the_one_target_it_can_mean(
    store: StateStore,
) -> None:
    email = Target.of(
        Channel.model_validate({"type": "email", "to": ["a@x.io"], "secretRef": {"name": "smtp"}})
    )
    ops = _slack("ops-webhook")
    store.mark(["e1"], email.legacy_key, Status.DELIVERED)
    store.mark(["e1"], ops.legacy_key, Status.DELIVERED)
    assert store.statuses("e1", [email, ops]) == {
        "email:a@x.io": Status.DELIVERED, "slack:slack": Status.DELIVERED,
        email.key: Status.DELIVERED, ops.key: Status.DELIVERED,
    }  # fmt: skip
    # Two targets an older version logged under one key: whose row it is cannot be told.
    dev = _slack("dev-webhook")
    assert dev.key not in store.statuses("e1", [ops, dev])
    assert ops.key not in store.statuses("e1", [ops, dev])
