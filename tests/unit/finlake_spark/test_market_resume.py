"""Where a market stream with an empty checkpoint starts reading (pure parts)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from finlake_spark.jobs.market_outcomes import Outcome, Summary
from finlake_spark.jobs.market_resume import EARLIEST, has_offsets, starting_offsets


def test_every_partition_gets_a_start_recorded_ones_after_their_last_record() -> None:
    offsets = json.loads(starting_offsets({0: 120, 2: 7}, {0: 150, 1: 40, 2: 7}, "ticks"))
    # Partition 1 was never read: from its start; 2 was read to its end: nothing new yet.
    assert offsets == {"ticks": {"0": 120, "1": EARLIEST, "2": 7}}


def test_a_partition_shorter_than_recorded_is_read_from_its_start() -> None:
    # The topic was deleted and created again: offset 500 does not exist in the new partition.
    offsets = json.loads(starting_offsets({0: 500}, {0: 30}, "ticks"))
    assert offsets == {"ticks": {"0": EARLIEST}}


def test_next_offsets_are_one_past_the_last_record_of_each_partition_whatever_its_outcome() -> None:
    summary = Summary((
        Outcome(None, 0, None, 10, None, None, last_offset=41),
        Outcome("undecodable", 0, None, 1, None, None, last_offset=44),
        Outcome(None, 1, None, 3, None, None, last_offset=2),
        Outcome(None, None, None, 0, None, None, last_offset=None),
    ))  # fmt: skip
    assert summary.next_offsets() == {0: 45, 1: 3}


def test_the_clocks_carried_on_are_per_partition_and_per_symbol() -> None:
    t = [datetime(2026, 11, 26, 10, m, tzinfo=UTC) for m in range(6)]
    summary = Summary((
        Outcome(None, 0, None, 5, t[0], t[3], 9, "AAA"),
        Outcome(None, 0, None, 5, t[0], t[1], 19, "BBB"),  # published after AAA: its own clock
        Outcome("late", 0, None, 1, t[0], t[0], 20, "BBB"),
        Outcome("price_positive", 0, None, 1, t[5], t[5], 21, "BBB"),  # failed: moves nothing
        Outcome("undecodable", 1, None, 1, None, None, 3, None),
    ))  # fmt: skip
    assert summary.partition_max({1: t[2]}) == {0: t[3], 1: t[2]}
    assert summary.symbol_max({"BBB": t[2], "CCC": t[4]}) == {"AAA": t[3], "BBB": t[2], "CCC": t[4]}


def test_a_checkpoint_has_offsets_once_spark_logged_a_batch(tmp_path: Path) -> None:
    assert not has_offsets(tmp_path)
    (tmp_path / "offsets").mkdir()
    (tmp_path / "offsets" / ".0.crc").write_text("")
    assert not has_offsets(tmp_path)
    (tmp_path / "offsets" / "0").write_text("v1\n")
    assert has_offsets(tmp_path)
