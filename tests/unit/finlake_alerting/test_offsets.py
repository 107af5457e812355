from __future__ import annotations

from finlake_alerting.offsets import OffsetTracker


def test_commit_stops_below_the_first_unfinished_event() -> None:
    tracker = OffsetTracker()
    tracker.track(0, 10, 2)
    tracker.track(0, 11, 0)
    tracker.track(0, 12, 1)
    tracker.track(1, 5, 0)
    assert tracker.committable() == {0: 10, 1: 6}
    tracker.committed({0: 10, 1: 6})
    tracker.done(0, 12)
    assert tracker.committable() == {}
    tracker.done(0, 10)
    assert tracker.committable() == {}
    tracker.done(0, 10)
    assert tracker.committable() == {0: 13}
    assert tracker.outstanding == 0


def test_a_revoked_partition_is_forgotten_and_late_completions_ignored() -> None:
    tracker = OffsetTracker()
    tracker.track(2, 0, 1)
    tracker.forget([2])
    tracker.done(2, 0)
    assert tracker.committable() == {}
