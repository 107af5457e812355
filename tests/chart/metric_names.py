"""The Prometheus sample names the code exposes, read from the code itself.

Every module of the deployables and the core that uses prometheus_client is imported; metrics on
the default registry are collected from it, and classes that build a registry of their own
(``self.registry``) are instantiated. So a metric added, renamed or removed in the code changes
what the chart checks accept.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {
    "finlake": REPO / "src" / "finlake",
    "finlake_operator": REPO / "operator" / "finlake_operator",
    "finlake_ingestion": REPO / "services" / "ingestion" / "finlake_ingestion",
    "finlake_query_api": REPO / "services" / "query_api" / "finlake_query_api",
    "finlake_alerting": REPO / "services" / "alerting" / "finlake_alerting",
    "finlake_spark": REPO / "spark_apps" / "finlake_spark",
}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "gauge": ("",),
    "stateset": ("",),
    "enum": ("",),
    "info": ("_info",),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "unknown": ("",),
}


def metric_modules() -> list[str]:
    """Dotted names of the modules that import prometheus_client."""
    names = []
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            if "prometheus_client" in path.read_text():
                parts = path.relative_to(folder).with_suffix("").parts
                names.append(".".join((package, *parts)).removesuffix(".__init__"))
    return names


def registry_names(registry: CollectorRegistry) -> set[str]:
    """Sample names of every metric family in a registry."""
    names = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def own_registries(module: object) -> list[CollectorRegistry]:
    """Registries of the module's classes that build one in their constructor without arguments."""
    registries = []
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__module__ != getattr(
            module, "__name__", None
        ) or "registry" not in inspect.getsource(cls):
            continue
        try:
            instance = cls()
        except TypeError:
            continue  # needs arguments: not a metrics holder
        registry = getattr(instance, "registry", None)
        if isinstance(registry, CollectorRegistry):
            registries.append(registry)
    return registries


def code_metric_names() -> set[str]:
    """Every sample name the code can expose."""
    names: set[str] = set()
    for module_name in metric_modules():
        module = importlib.import_module(module_name)
        for registry in own_registries(module):
            names |= registry_names(registry)
    return names | registry_names(REGISTRY)
