"""Artifact tarballs are extracted only inside their folder, with or without Python's tar filter."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from finlake.errors import ArtifactError
from finlake.stack.artifacts import extract_tar


def _tarball(path: Path, *members: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for member in members:
            data = b"x" * member.size
            archive.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


def _file(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 1
    return info


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


# Python's own filter only where this Python has one (3.11.4+).
CHECKS = ["filter", "by hand"] if hasattr(tarfile, "data_filter") else ["by hand"]


@pytest.fixture(params=CHECKS)
def checks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways: Python's data filter, and the checks made without it (Python < 3.11.4)."""
    if request.param == "by hand":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    return str(request.param)


@pytest.mark.usefixtures("checks")
def test_a_well_formed_tarball_is_extracted(tmp_path: Path) -> None:
    tarball = _tarball(
        tmp_path / "ok.tar.gz", _file("app/bin/run"), _link("app/bin/current", "run")
    )
    with tarfile.open(tarball) as archive:
        extract_tar(archive, tmp_path / "out")
    assert (tmp_path / "out" / "app" / "bin" / "run").read_bytes() == b"x"
    assert (tmp_path / "out" / "app" / "bin" / "current").resolve().name == "run"


@pytest.mark.parametrize(
    "member",
    [_file("../escaped"), _link("app/out", "../../elsewhere"),
     _link("app/hard", "../../etc/passwd", tarfile.LNKTYPE)],
    ids=["dot-dot", "symlink-out", "hardlink-out"],
)  # fmt: skip
def test_a_member_outside_the_folder_is_refused(
    tmp_path: Path, checks: str, member: tarfile.TarInfo
) -> None:
    tarball = _tarball(tmp_path / "bad.tar.gz", member)
    expected = (ArtifactError, tarfile.FilterError) if checks == "filter" else ArtifactError
    with tarfile.open(tarball) as archive, pytest.raises(expected):
        extract_tar(archive, tmp_path / "out")
    assert not (tmp_path / "escaped").exists()


def test_an_absolute_member_never_lands_outside_the_folder(tmp_path: Path, checks: str) -> None:
    outside = tmp_path / "absolute-escape"
    tarball = _tarball(tmp_path / "bad.tar.gz", _file(str(outside)))
    with tarfile.open(tarball) as archive:
        if checks == "filter":  # Python's filter takes the leading / off: it lands inside
            extract_tar(archive, tmp_path / "out")
            assert (tmp_path / "out" / str(outside).lstrip("/")).is_file()
        else:
            with pytest.raises(ArtifactError, match="would be extracted outside"):
                extract_tar(archive, tmp_path / "out")
    assert not outside.exists()
