"""Two uploads of the same content at once, on any lake: the second starts while the first reads."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable

from pyiceberg.catalog import Catalog

from finlake.transactions.upload import UploadResult, upload_transactions

RACER_HEAD_START_S = 3.0
"""How long the first upload waits for the second before it goes on: without the lock the second
one (a small file) has committed by then, and the first would append the same rows again."""


def race_the_same_upload(
    open_lake: Callable[[], tuple[Catalog, str]], data: bytes, file_name: str
) -> list[UploadResult]:
    """Upload ``data`` and, once the first is reading it, the same bytes from another thread
    (its own catalog connection); both results, the first's first."""
    second: list[UploadResult] = []
    failures: list[BaseException] = []

    def upload_again() -> None:
        catalog, warehouse = open_lake()
        try:
            second.append(
                upload_transactions(catalog, warehouse, io.BytesIO(data), file_name=file_name)
            )
        except BaseException as error:  # reported by the caller's thread
            failures.append(error)

    racer = threading.Thread(target=upload_again, name="second-upload")

    def progress(_: int) -> None:
        if racer.ident is None:  # the first batch the first upload read
            racer.start()
            racer.join(timeout=RACER_HEAD_START_S)

    catalog, warehouse = open_lake()
    first = upload_transactions(
        catalog, warehouse, io.BytesIO(data), file_name=file_name, progress=progress
    )
    racer.join(timeout=120)
    assert not racer.is_alive(), "the second upload never finished"
    if failures:
        raise failures[0]
    return [first, *second]
