"""The images the operator and the examples name are the images skaffold builds."""

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


def test_default_and_example_images_are_built_by_skaffold() -> None:
    skaffold = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    built = {artifact["image"] for artifact in skaffold["build"]["artifacts"]}
    named = {
        "producer default": DEFAULT_PRODUCER_IMAGE,
        "spark default": DEFAULT_SPARK_IMAGE,
        "alerting default": OperatorOptions().alerting_image,
    }
    for example in sorted((ROOT / "manifests" / "examples").glob("*.yaml")):
        for document in yaml.safe_load_all(example.read_text()):
            for number, image in enumerate(images_in(document)):
                named[f"{example.name} #{number}"] = image
    assert len(named) > 3  # the examples name images too
    unbuilt = {where: image for where, image in named.items() if repository(image) not in built}
    assert not unbuilt, f"images skaffold does not build: {unbuilt}"
