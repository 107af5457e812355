"""The images the operator names are the images skaffold builds; the examples name none."""

from __future__ import annotations

from pathlib import Path

import yaml

from finlake.contracts.market_feed import DEFAULT_PRODUCER_IMAGE
from finlake.contracts.pipeline_jobs import DEFAULT_SPARK_IMAGE
from finlake_operator.config import OperatorOptions

ROOT = Path(__file__).resolve().parents[3]


def repository(image: str) -> str:
    """``registry/path/name:tag`` -> ``name``."""
    return image.rsplit("/", 1)[-1].split(":", 1)[0]


def images_in(node: object) -> list[str]:
    """Every ``image:`` value anywhere in a parsed YAML document."""
    if isinstance(node, dict):
        found = [node["image"]] if isinstance(node.get("image"), str) else []
        return found + [image for value in node.values() for image in images_in(value)]
    if isinstance(node, list):
        return [image for item in node for image in images_in(item)]
    return []


def test_default_images_are_built_by_skaffold() -> None:
    skaffold = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    built = {artifact["image"] for artifact in skaffold["build"]["artifacts"]}
    named = {
        "producer default": DEFAULT_PRODUCER_IMAGE,
        "spark default": DEFAULT_SPARK_IMAGE,
        "alerting default": OperatorOptions().alerting_image,
    }
    unbuilt = {where: image for where, image in named.items() if repository(image) not in built}
    assert not unbuilt, f"images skaffold does not build: {unbuilt}"


def test_the_examples_name_no_image() -> None:
    # The operator gives a resource the chart's images (sparkApps.image, ingestion.image) only when
    # it names none: an image pinned here would ignore the registry and tag of every install.
    examples = sorted((ROOT / "manifests" / "examples").glob("*.yaml"))
    assert len(examples) > 3
    named = {
        f"{example.name} #{number}": image
        for example in examples
        for document in yaml.safe_load_all(example.read_text())
        for number, image in enumerate(images_in(document))
    }
    assert not named, f"examples pinning an image: {named}"
