"""Zip importers re-read their archive on cache invalidation only when it changed."""

from __future__ import annotations

import importlib
import sys
import zipfile
import zipimport
from collections.abc import Iterator
from pathlib import Path

import pytest

from finlake_spark import zip_imports

pytestmark = pytest.mark.skipif(sys.version_info >= (3, 12), reason="Python 3.12 is lazy itself")


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "pkgs.zip"
    with zipfile.ZipFile(path, "w") as zipped:
        zipped.writestr("zipped_one.py", "VALUE = 1\n")
    monkeypatch.syspath_prepend(str(path))
    # The unpatched method, restored after the test (install() replaces it process-wide).
    monkeypatch.setattr(
        zipimport.zipimporter, "invalidate_caches", zipimport.zipimporter.invalidate_caches
    )
    yield path
    for name in ("zipped_one", "zipped_two"):
        sys.modules.pop(name, None)


def test_an_unchanged_archive_is_not_read_again(
    archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    read_directory = zipimport._read_directory  # type: ignore[attr-defined]

    def counting(path: str) -> object:
        reads.append(path)
        return read_directory(path)

    monkeypatch.setattr(zipimport, "_read_directory", counting)
    assert importlib.import_module("zipped_one").VALUE == 1
    zip_imports.install()
    zip_imports.install()  # idempotent: one wrapper, not two
    importlib.invalidate_caches()
    first = reads.count(str(archive))
    importlib.invalidate_caches()
    importlib.invalidate_caches()
    assert reads.count(str(archive)) == first  # nothing re-read while the archive is unchanged

    with zipfile.ZipFile(archive, "a") as zipped:
        zipped.writestr("zipped_two.py", "VALUE = 2\n")
    importlib.invalidate_caches()
    assert reads.count(str(archive)) > first
    assert importlib.import_module("zipped_two").VALUE == 2  # the change is seen
