"""Dockerfiles, checked statically (no Docker engine here); skaffold.yaml against its schema."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from tests.chart.conftest import CHART, REPO, ChartTools

DOCKERFILES = {
    "operator/Dockerfile": "finlake-operator",
    "services/ingestion/Dockerfile": "finlake-ingestion",
    "services/query_api/Dockerfile": "finlake-query-api",
    "services/alerting/Dockerfile": "finlake-alerting",
    "spark_apps/Dockerfile": "finlake-spark",
}
PINNED = re.compile(r"^[\w./-]+:[\w.-]*\d[\w.-]*(@sha256:[0-9a-f]{64})?$")


def instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def base_images(steps: list[tuple[str, str]]) -> list[str]:
    args = dict(a.split("=", 1) for op, a in steps if op == "ARG" and "=" in a)
    stages: set[str] = set()
    images = []
    for op, arg in steps:
        if op != "FROM":
            continue
        parts = arg.split()
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
        if image not in stages:
            images.append(image)
        if len(parts) == 3 and parts[1].upper() == "AS":
            stages.add(parts[2])
    return images


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_is_multi_stage_pinned_and_non_root(dockerfile: str) -> None:
    steps = instructions(REPO / dockerfile)
    assert sum(op == "FROM" for op, _ in steps) >= 2, "multi-stage"
    for image in base_images(steps):
        assert PINNED.match(image), f"{image} is not pinned to a version"
        assert not image.endswith(":latest")
    users = [arg for op, arg in steps if op == "USER"]
    assert users, "no USER"
    assert users[-1].split(":")[0] not in ("root", "0"), "the final stage runs as root"


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_copy_sources_exist(dockerfile: str) -> None:
    copied = 0
    for op, arg in instructions(REPO / dockerfile):
        if op != "COPY" or "--from=" in arg:
            continue
        *sources, _ = [part for part in arg.split() if not part.startswith("--")]
        for source in sources:
            assert (REPO / source).exists(), f"{dockerfile}: COPY {source} does not exist"
            copied += 1
    assert copied


def test_spark_image_is_the_pinned_spark_with_the_pinned_connectors() -> None:
    from finlake.stack import artifacts

    steps = instructions(REPO / "spark_apps" / "Dockerfile")
    assert f"apache/spark:{artifacts.SPARK_VERSION}-" in base_images(steps)[-1]
    pom = (REPO / "spark_apps" / "docker" / "pom.xml").read_text()
    for coordinate in (*artifacts.SPARK.coordinates, *artifacts.SPARK_S3.coordinates):
        _, artifact, version = coordinate.split(":")[:3]
        if artifact == "sqlite-jdbc":
            continue  # the local catalog only
        pinned = re.search(
            rf"<artifactId>{re.escape(artifact)}</artifactId>\s*<version>([^<]+)<", pom
        )
        assert pinned, f"{artifact} missing from the image's pom.xml"
        assert pinned.group(1) == version, artifact


def test_spark_image_installs_what_the_feature_refresh_imports(tmp_path: Path) -> None:
    """The transactions batch refreshes the features after each run: the image's environment,
    resolved from uv.lock as its Dockerfile syncs it, holds Feast and the PostgreSQL driver."""
    from tests.chart.test_image_builds import uv

    (sync,) = [a for op, a in instructions(REPO / "spark_apps" / "Dockerfile") if "uv sync" in a]
    command = [uv(), *sync.split()[1:], "--dry-run"]
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv")}
    planned = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, check=True, timeout=300
    ).stderr
    for package in ("feast", "psycopg", "sqlalchemy", "pyspark"):
        assert re.search(rf"^ \+ {package}==", planned, re.MULTILINE), (package, planned[-2000:])


@pytest.fixture(scope="module")
def skaffold() -> dict[str, object]:
    return dict(yaml.safe_load((REPO / "skaffold.yaml").read_text()))


def test_skaffold_yaml_matches_skaffolds_schema(
    chart_tools: ChartTools, skaffold: dict[str, object]
) -> None:
    schema = json.loads(chart_tools.skaffold_schema.read_text())
    errors = sorted(Draft7Validator(schema).iter_errors(skaffold), key=str)
    assert errors == [], [e.message for e in errors]


def test_skaffold_schema_rejects_a_typo(
    chart_tools: ChartTools, skaffold: dict[str, object]
) -> None:
    schema = json.loads(chart_tools.skaffold_schema.read_text())
    broken = {**skaffold, "deploi": {}}
    assert list(Draft7Validator(schema).iter_errors(broken))


def test_skaffold_builds_every_image_and_deploys_each_profile(skaffold: dict[str, Any]) -> None:
    artifacts = {a["image"]: a["docker"]["dockerfile"] for a in skaffold["build"]["artifacts"]}
    assert artifacts == {image: path for path, image in DOCKERFILES.items()}
    profiles = {p["name"]: p for p in skaffold["profiles"]}
    assert set(profiles) == {"dev", "prod"}
    for name, profile in profiles.items():
        (release,) = profile["deploy"]["helm"]["releases"]
        assert (REPO / release["chartPath"]) == CHART
        assert release["valuesFiles"] == [f"charts/finlake/values-{name}.yaml"]
