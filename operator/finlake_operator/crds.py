"""CustomResourceDefinitions generated from the spec models (no second, hand-kept schema)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from finlake.contracts.alert_rule import AlertRuleSpec
from finlake.contracts.market_feed import MarketFeedSpec
from finlake.contracts.medallion_pipeline import MedallionPipelineSpec
from finlake.contracts.resources import GROUP, VERSION
from finlake_operator.status import ResourceStatus

CATEGORY = "finlake"
# Formats the API server understands; pydantic's others ("duration", "uri") would only be ignored.
_KNOWN_FORMATS = {"int32", "int64", "float", "double", "byte", "date", "date-time", "password"}
_DROPPED_KEYS = {"title", "default", "examples", "$schema"}


@dataclass(frozen=True)
class CustomResourceKind:
    """One finlake kind: its names, spec model and the columns kubectl shows."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: type[BaseModel]
    columns: tuple[tuple[str, str, str, str], ...]  # name, type, jsonPath, description

    @property
    def singular(self) -> str:
        """The lower-case singular name."""
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        """``<plural>.<group>``, the CRD's metadata.name."""
        return f"{self.plural}.{GROUP}"


def _ready(kind_columns: tuple[tuple[str, str, str, str], ...]) -> tuple[tuple[str, ...], ...]:
    ready = ("Ready", "string", '.status.conditions[?(@.type=="Ready")].status', "Ready condition.")
    reason = ("Reason", "string", '.status.conditions[?(@.type=="Ready")].reason', "Why.")
    age = ("Age", "date", ".metadata.creationTimestamp", "Age.")
    return (ready, *kind_columns, reason, age)


KINDS: tuple[CustomResourceKind, ...] = (
    CustomResourceKind(
        kind="MarketFeed",
        plural="marketfeeds",
        short_names=("mf", "feed"),
        spec=MarketFeedSpec,
        columns=(
            ("Source", "string", ".spec.source", "Where the ticks come from."),
            ("Symbols", "integer", ".status.symbols", "How many symbols are polled."),
            ("Topic", "string", ".spec.topic", "Kafka topic."),
        ),
    ),
    CustomResourceKind(
        kind="MedallionPipeline",
        plural="medallionpipelines",
        short_names=("mp", "pipeline"),
        spec=MedallionPipelineSpec,
        columns=(
            ("Fresh", "string", '.status.conditions[?(@.type=="Fresh")].status', "Fresh."),
            ("Lag", "string", ".status.lag", "Age of the newest event that passed the checks."),
            ("Last-Success", "date", ".status.lastSuccess", "Last successful batch run."),
        ),
    ),
    CustomResourceKind(
        kind="AlertRule",
        plural="alertrules",
        short_names=("ar",),
        spec=AlertRuleSpec,
        columns=(
            ("Condition", "string", ".spec.condition.type", "What the rule detects."),
            ("Severity", "string", ".spec.severity", "info, warning or critical."),
        ),
    ),
)


def kind_named(kind: str) -> CustomResourceKind:
    """The finlake kind called ``kind``."""
    for candidate in KINDS:
        if candidate.kind == kind:
            return candidate
    raise KeyError(kind)


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema as a Kubernetes structural schema (no refs, no nulls, no anyOf)."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    definitions = schema.pop("$defs", {})
    return _structural(schema, definitions, path=model.__name__)


def _structural(node: dict[str, Any], definitions: dict[str, Any], path: str) -> dict[str, Any]:
    node = dict(node)
    if "$ref" in node:
        target = copy.deepcopy(definitions[node.pop("$ref").rsplit("/", 1)[-1]])
        node = target | node  # the field's own description wins over the class docstring
    if "anyOf" in node:
        branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
        if len(branches) != 1:
            raise ValueError(f"{path}: a union of {len(branches)} types is not structural")
        # What the field itself declares (description, item patterns) wins over the branch's.
        node = _structural(branches[0], definitions, path) | {
            k: v for k, v in node.items() if k not in _DROPPED_KEYS
        }
    if "allOf" in node and len(node["allOf"]) == 1:
        node = _structural(node.pop("allOf")[0], definitions, path) | node
    if "const" in node:
        node["enum"] = [node.pop("const")]
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "format" and value not in _KNOWN_FORMATS:
            continue
        if key == "properties":
            result[key] = {
                name: _structural(child, definitions, f"{path}.{name}")
                for name, child in value.items()
            }
        elif key == "items":
            result[key] = _structural(value, definitions, f"{path}[]")
        elif key == "additionalProperties":
            # Unknown fields are pruned (and refused by kubectl's strict field validation).
            if isinstance(value, dict):
                result[key] = _structural(value, definitions, f"{path}{{}}")
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            result["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            result[key] = True
        elif key == "required":
            result[key] = sorted(value)
        else:
            result[key] = value
    if "enum" in result and "type" not in result:
        result["type"] = "string"
    return result


def build_crd(kind: CustomResourceKind) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind."""
    spec = structural_schema(kind.spec)
    status = structural_schema(ResourceStatus)
    status["x-kubernetes-preserve-unknown-fields"] = True  # room for kopf's own bookkeeping
    columns = [
        {"name": name, "type": kind_, "jsonPath": json_path, "description": description}
        for name, kind_, json_path, description in _ready(kind.columns)
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/part-of": "finlake"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": [CATEGORY],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": (kind.spec.__doc__ or kind.kind).strip(),
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def build_peering_crd(*, clusterwide: bool) -> dict[str, Any]:
    """kopf's peering CRD (KopfPeering or ClusterKopfPeering): one active operator at a time."""
    kind = "ClusterKopfPeering" if clusterwide else "KopfPeering"
    plural = f"{kind.lower()}s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev"},
        "spec": {
            "scope": "Cluster" if clusterwide else "Namespaced",
            "group": "kopf.dev",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def render_crds() -> dict[str, str]:
    """Every CRD as YAML text, by file name (``<group>_<plural>.yaml``), kopf's peering too."""
    header = "# Generated by `finlake operator crds` from the spec models; do not edit.\n"
    crds = {f"{GROUP}_{kind.plural}.yaml": build_crd(kind) for kind in KINDS}
    for clusterwide in (False, True):
        crd = build_peering_crd(clusterwide=clusterwide)
        crds[f"kopf.dev_{crd['spec']['names']['plural']}.yaml"] = crd
    return {
        name: header + yaml.safe_dump(crd, sort_keys=False, width=100, allow_unicode=True)
        for name, crd in crds.items()
    }


def write_crds(output: Path) -> list[Path]:
    """Write every CRD into ``output``; returns the files written."""
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_crds().items():
        path = output / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
