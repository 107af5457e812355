"""Cheap ``importlib.invalidate_caches()`` in PySpark's Python workers on Python 3.11.

PySpark's worker calls ``importlib.invalidate_caches()`` before every task
(``worker_util.setup_spark_files``), and on Python 3.10 and 3.11 that makes every
``zipimporter`` on the path re-read its archive's directory: pyspark.zip, py4j's zip and
spark-core's jar (~10k entries) are on the worker's path, once per package imported from them.
For the alert detection's one stateful task per micro-batch that was ~50 ms of its ~160 ms.
CPython 3.12 made the invalidation lazy (python/cpython#103200) and Spark's master only invalidates
when it added a path (SPARK-54744); until both reach us, :func:`install` lets a zipimporter
re-read its archive only when the archive changed (size or modification time).
"""

from __future__ import annotations

import os
import sys
import zipimport
from typing import Any

_MARK = "_finlake_patched"


def _stamp(archive: str) -> tuple[int, int] | None:
    try:
        status = os.stat(archive)
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


def install() -> None:
    """Patch ``zipimport.zipimporter.invalidate_caches`` (idempotent; no-op on Python 3.12+)."""
    if sys.version_info >= (3, 12):
        return
    original = zipimport.zipimporter.invalidate_caches
    if getattr(original, _MARK, False):
        return

    def invalidate_caches(self: Any) -> None:
        stamp = _stamp(self.archive)
        if stamp is not None and getattr(self, "_finlake_stamp", None) == stamp:
            return  # the archive is as this importer last read it
        original(self)
        self._finlake_stamp = stamp

    setattr(invalidate_caches, _MARK, True)
    zipimport.zipimporter.invalidate_caches = invalidate_caches  # type: ignore[method-assign]
