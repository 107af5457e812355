"""Named locks shared by every process writing to one lake, held in (or next to) its catalog.

Iceberg's optimistic commits make each commit atomic, not a check followed by a commit: two
uploads of the same file that both find it new would both append it. A lock named after what is
being written makes such writers take turns. PostgreSQL catalogs (clusters, any number of API
replicas) use a session advisory lock; the local SQLite catalog (one machine) a lock file next to
the database. Both are released by the operating system or the server if the holder dies.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from sqlalchemy import text

from finlake.errors import ConfigurationError

LOCKS_FOLDER = "locks"


def advisory_key(name: str) -> int:
    """The signed 64-bit key of a PostgreSQL advisory lock for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def catalog_lock(catalog: Catalog, name: str) -> Iterator[None]:
    """Hold the lock ``name`` of the catalog's lake (waiting for its holder) within the block."""
    if not isinstance(catalog, SqlCatalog):
        raise ConfigurationError(
            f"the lake's catalog is a {type(catalog).__name__}; locks need its SQL catalog"
        )
    engine = catalog.engine
    dialect = engine.dialect.name
    if dialect == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            raise ConfigurationError("an in-memory SQLite catalog has no folder to lock in")
        folder = Path(database).resolve().parent / LOCKS_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(folder / f"{hashlib.sha256(name.encode()).hexdigest()[:32]}.lock"):
            yield
        return
    if dialect != "postgresql":
        raise ConfigurationError(f"no lock for a {dialect} catalog (sqlite or postgresql)")
    key = {"key": advisory_key(name)}
    # Autocommit: the session lock outlives statements, and no transaction stays open meanwhile.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)


@contextlib.contextmanager
def catalog_lock_telling(
    catalog: Catalog, name: str, *, waiting: Callable[[], None], after_s: float
) -> Iterator[None]:
    """``catalog_lock``, calling ``waiting`` once if another holder keeps the lock past
    ``after_s`` (a writer that waits says why it does not start)."""
    acquired = threading.Event()

    def tell() -> None:
        if not acquired.is_set():
            waiting()

    timer = threading.Timer(after_s, tell)
    timer.daemon = True
    timer.start()
    try:
        with catalog_lock(catalog, name):
            acquired.set()
            timer.cancel()
            yield
    finally:
        timer.cancel()
