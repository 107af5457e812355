from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from finlake_ingestion.metrics import IngestionMetrics
from finlake_ingestion.replay_file import ReplayFileError
from finlake_ingestion.sources.replay import ReplaySource

HEADER = "symbol,timestamp,price,volume,desk\n"


class RecordingStop(threading.Event):
    """A stop event whose waits return at once and are recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        return False


def ticks_file(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "ticks.csv"
    path.write_text(HEADER + "".join(line + "\n" for line in lines))
    return path


def test_a_bad_line_anywhere_stops_the_replay_before_the_first_batch(tmp_path: Path) -> None:
    good = [f"AAPL,2026-11-24T14:30:{s:02d}Z,1.0,1,eq" for s in range(50)]
    path = ticks_file(tmp_path, [*good, "AAPL,not-a-time,1.0,1,eq"])
    batches = ReplaySource(path, IngestionMetrics(), batch_size=10).batches(threading.Event())
    with pytest.raises(ReplayFileError, match=r"ticks.csv:52: timestamp 'not-a-time'"):
        next(batches)


def test_fast_replay_yields_every_row_in_batches(tmp_path: Path) -> None:
    lines = [f"AAPL,2026-11-24T14:30:{s:02d}Z,1.0,1,eq" for s in range(25)]
    metrics = IngestionMetrics()
    source = ReplaySource(ticks_file(tmp_path, lines), metrics, batch_size=10)
    batches = list(source.batches(threading.Event()))
    assert [len(b.ticks) for b in batches] == [10, 10, 5]
    assert batches[0].headers is not None
    assert batches[0].headers[0] == [("finlake.extra.desk", b"eq")]
    assert source.summary is not None
    assert source.summary.rows == 25
    assert (
        metrics.registry.get_sample_value(
            "finlake_ingestion_replay_extra_values_total", {"column": "desk"}
        )
        == 25
    )


def test_paced_replay_waits_event_time_over_speed(tmp_path: Path) -> None:
    lines = [
        "AAPL,2026-11-24T14:30:00Z,1.0,1,",
        "MSFT,2026-11-24T14:30:00Z,1.0,1,",
        "AAPL,2026-11-24T14:30:10Z,1.0,1,",
        "AAPL,2026-11-24T14:30:30Z,1.0,1,",
    ]
    stop = RecordingStop()
    source = ReplaySource(ticks_file(tmp_path, lines), IngestionMetrics(), speed=10.0)
    batches = list(source.batches(stop))
    assert [len(b.ticks) for b in batches] == [2, 1, 1]
    assert stop.waits == pytest.approx([1.0, 3.0], abs=0.05)


def test_stop_ends_a_replay_early(tmp_path: Path) -> None:
    lines = [f"AAPL,2026-11-24T14:30:{s:02d}Z,1.0,1," for s in range(30)]
    stop = threading.Event()
    source = ReplaySource(ticks_file(tmp_path, lines), IngestionMetrics(), batch_size=10)
    seen = 0
    for batch in source.batches(stop):
        seen += len(batch.ticks)
        stop.set()
    assert seen == 10


def test_long_paced_waits_are_cut_into_heartbeats(tmp_path: Path) -> None:
    lines = ["AAPL,2026-11-24T14:30:00Z,1.0,1,", "AAPL,2026-11-24T14:30:12Z,1.0,1,"]
    stop = RecordingStop()
    source = ReplaySource(ticks_file(tmp_path, lines), IngestionMetrics(), speed=1.0)
    batches = list(source.batches(stop))
    assert [len(b.ticks) for b in batches] == [1, 0, 0, 1]
    assert sum(stop.waits) == pytest.approx(12.0, abs=0.05)
    assert max(stop.waits) <= 5.0


class SteppingStop(threading.Event):
    """A stop event whose waits return at once and move a fake wall clock forward."""

    def __init__(self, start: datetime) -> None:
        super().__init__()
        self.now = start

    def wait(self, timeout: float | None = None) -> bool:
        self.now += timedelta(seconds=timeout or 0.0)
        return False


def test_paced_ticks_are_stamped_when_they_go_to_the_producer(tmp_path: Path) -> None:
    lines = [
        "AAPL,2026-11-24T14:30:00Z,1.0,1,",
        "MSFT,2026-11-24T14:30:00Z,1.0,1,",
        "AAPL,2026-11-24T14:30:10Z,1.0,1,",
        "AAPL,2026-11-24T14:30:30Z,1.0,1,",
    ]
    stop = SteppingStop(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
    started = stop.now
    source = ReplaySource(
        ticks_file(tmp_path, lines), IngestionMetrics(), speed=10.0, wall_clock=lambda: stop.now
    )
    handed = [([t.produced_at for t in b.ticks], stop.now) for b in source.batches(stop)]
    assert [len(stamps) for stamps, _ in handed] == [2, 1, 1]
    for stamps, handed_at in handed:
        assert stamps == [handed_at] * len(stamps)
    assert handed[-1][1] - started == pytest.approx(
        timedelta(seconds=4), abs=timedelta(seconds=0.05)
    )
