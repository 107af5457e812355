from __future__ import annotations

from pathlib import Path

import pytest

from finlake.errors import JavaNotFoundError
from finlake.stack.java import find_java


def test_java_on_path_satisfies_java_17() -> None:
    runtime = find_java(
        minimum=17, java_home=None, purpose="Kafka", setting="FINLAKE_STACK__JAVA_HOME"
    )
    assert runtime.major >= 17
    assert runtime.executable.exists()


def test_missing_java_home_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(JavaNotFoundError, match=r"FINLAKE_STACK__JAVA_HOME=.* has no bin/java"):
        find_java(
            minimum=17, java_home=tmp_path, purpose="Kafka", setting="FINLAKE_STACK__JAVA_HOME"
        )


def test_too_old_java_says_what_was_found_and_how_to_fix() -> None:
    with pytest.raises(JavaNotFoundError) as caught:
        find_java(minimum=99, java_home=None, purpose="Apicurio Registry", setting="X_JAVA_HOME")
    message = str(caught.value)
    assert "Apicurio Registry needs Java 99+" in message
    assert "(Java 17)" in message
    assert "set X_JAVA_HOME" in message
    assert "\n" not in message
