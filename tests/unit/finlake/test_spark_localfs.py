"""The no-fork local file system's jar: compiled once with the JDK's javac, cached, optional."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import pytest

from finlake.spark import localfs
from finlake.spark.localfs import build_jar, find_javac, hadoop_api_jar, local_fs_jar


@pytest.fixture
def javac() -> Path:
    found = find_javac()
    assert found is not None, "the JDK's javac is part of this machine kind"
    return found


def test_the_classes_compile_against_pysparks_hadoop_and_are_cached(
    tmp_path: Path, javac: Path
) -> None:
    jar = build_jar(tmp_path, hadoop_api_jar(), javac)
    with zipfile.ZipFile(jar) as archive:
        names = set(archive.namelist())
    assert {
        "io/finlake/hadoop/NioRawLocalFileSystem.class",
        "io/finlake/hadoop/NioLocalFileSystem.class",
        "io/finlake/hadoop/NioLocalFs.class",
        "io/finlake/hadoop/NioLocalFs$Raw.class",
    } <= names
    # A second build finds the jar without compiling (this javac would fail).
    assert build_jar(tmp_path, hadoop_api_jar(), tmp_path / "no-javac") == jar
    assert [p.name for p in (tmp_path / "jvm").iterdir()] == [jar.name]  # no work folder left


def test_a_failed_compile_is_an_error_with_javacs_message(tmp_path: Path, javac: Path) -> None:
    with pytest.raises(RuntimeError, match=r"(?s)javac failed: .*cannot find symbol"):
        build_jar(tmp_path, tmp_path / "hadoop-client-api-0.jar", javac)
    assert list((tmp_path / "jvm").iterdir()) == []


def test_without_javac_the_session_keeps_hadoops_classes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(localfs, "find_javac", lambda: None)
    with caplog.at_level(logging.INFO, logger="finlake.spark.localfs"):
        assert local_fs_jar(tmp_path) is None
    assert "no javac" in caplog.text
