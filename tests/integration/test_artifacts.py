"""Artifact resolution with the real Maven against Maven Central, into a throw-away cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from finlake.errors import ArtifactError
from finlake.stack.artifacts import ArtifactCache, Bundle

TINY = Bundle("tiny", ("org.slf4j:slf4j-api:1.7.36",))


def test_download_is_verified_and_a_truncated_jar_is_fetched_again(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    folder = cache.ensure(TINY)
    jar = folder / "lib" / "slf4j-api-1.7.36.jar"
    whole = jar.read_bytes()
    assert cache.problems(TINY) == []

    jar.write_bytes(whole[: len(whole) // 2])  # a half-written file
    assert cache.problems(TINY) == ["lib/slf4j-api-1.7.36.jar does not match its checksum"]
    cache.ensure(TINY)
    assert jar.read_bytes() == whole


def test_corrupt_jar_in_mavens_own_repository_is_replaced(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    cache.ensure(TINY)
    [cached] = list(cache.repository.rglob("slf4j-api-1.7.36.jar"))
    cached.write_bytes(b"PK\x03\x04 not really a jar")
    shutil.rmtree(cache.folder(TINY))
    folder = cache.ensure(TINY)
    assert cache.problems(TINY) == []
    assert (folder / "lib" / "slf4j-api-1.7.36.jar").stat().st_size > 10_000


def test_an_unfinished_download_is_detected(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    (cache.folder(TINY) / "lib").mkdir(parents=True)
    assert cache.problems(TINY) == ["download never finished"]


def test_no_network_and_empty_cache_gives_one_clear_line(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path, mirror="http://127.0.0.1:9/maven2")
    with pytest.raises(ArtifactError) as caught:
        cache.ensure(TINY)
    message = str(caught.value)
    assert message.startswith(
        "cannot download tiny (org.slf4j:slf4j-api:1.7.36) from Maven Central"
    )
    assert "\n" not in message
