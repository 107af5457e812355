"""The import-linter contracts cover what they claim to."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SPARK_MODULES = {"finlake.spark", "finlake.transforms"}


def test_only_spark_code_may_import_pyspark_names_every_other_core_module() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [contract] = [
        c
        for c in config["tool"]["importlinter"]["contracts"]
        if c["name"] == "Only Spark code imports pyspark"
    ]
    core = {
        f"finlake.{path.stem if path.suffix == '.py' else path.name}"
        for path in (ROOT / "src" / "finlake").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    sources = {m for m in contract["source_modules"] if m.startswith("finlake.")}
    assert sources == core - SPARK_MODULES
