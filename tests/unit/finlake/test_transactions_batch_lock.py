"""The transactions batch's lake lock: a second run waits for the first, and says so."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from finlake.config import FinlakeSettings
from finlake_spark.jobs.transactions_run import batch_lock

WAITING = "transactions: another batch run is in progress on this lake; waiting for it to finish"


def test_a_second_run_waits_for_the_first_and_says_so(tmp_path: Path) -> None:
    settings = FinlakeSettings.model_validate({"home": tmp_path})
    order: list[str] = []
    said: list[str] = []
    inside, release = threading.Event(), threading.Event()

    def first() -> None:
        with batch_lock(settings, report=said.append):
            order.append("first in")
            inside.set()
            release.wait(30)
            order.append("first out")

    def second() -> None:
        with batch_lock(settings, report=said.append, notice_after_s=0.2):
            order.append("second in")

    runs = [threading.Thread(target=first), threading.Thread(target=second)]
    runs[0].start()
    assert inside.wait(30)
    runs[1].start()
    time.sleep(1.5)
    assert (order, said) == (["first in"], [WAITING])
    release.set()
    for run in runs:
        run.join(30)
    assert order == ["first in", "first out", "second in"]
    assert said == [WAITING]


def test_a_run_that_finds_the_lock_free_says_nothing(tmp_path: Path) -> None:
    settings = FinlakeSettings.model_validate({"home": tmp_path})
    said: list[str] = []
    with batch_lock(settings, report=said.append, notice_after_s=0.1):
        time.sleep(0.4)  # longer than the notice delay: only waiting is reported
    time.sleep(0.2)
    assert said == []
