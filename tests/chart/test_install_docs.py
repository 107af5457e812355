"""README's "Install on Kubernetes", checked against the chart and the examples it installs: every
Secret the production values reference is created with the key the chart reads, and step 4 applies
nothing that overwrites a Secret created before (the examples' `change-me` placeholders)."""

from __future__ import annotations

import itertools
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from tests.chart.conftest import CHART, REPO, ChartTools, documents

SECTION = "## Install on Kubernetes"


def install_commands(readme: str | None = None) -> list[list[str]]:
    """The shell commands of README's install section (continuation lines joined), as words."""
    text = readme if readme is not None else (REPO / "README.md").read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.find("\n## ", 1)] if "\n## " in section[1:] else section
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip():
                commands.append(shlex.split(line, comments=True))
    return commands


def created(commands: list[list[str]], kind: str) -> dict[str, set[str]]:
    """`kubectl create secret generic NAME` / `create configmap NAME`: name -> the keys given."""
    made: dict[str, set[str]] = {}
    for words in commands:
        if words[:1] != ["kubectl"] or "create" not in words:
            continue
        rest = words[words.index("create") + 1 :]
        if kind == "secret" and rest[:2] == ["secret", "generic"]:
            name, options = rest[2], rest[3:]
        elif kind == "configmap" and rest[:1] == ["configmap"]:
            name, options = rest[1], rest[2:]
        else:
            continue
        keys = {
            option.split("=", 2)[1]
            for option in options
            if option.startswith(("--from-literal=", "--from-file=")) and option.count("=") >= 2
        }
        made.setdefault(name, set()).update(keys)
    return made


def applied_files(commands: list[list[str]]) -> list[Path]:
    """What `kubectl ... apply -f X` applies (a folder: its YAML files), except the CRDs script."""
    files: list[Path] = []
    for words in commands:
        if words[:1] != ["kubectl"] or "apply" not in words:
            continue
        for flag, value in itertools.pairwise(words):
            if flag in ("-f", "--filename"):
                path = REPO / value
                files += sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    return files


def applied_documents(commands: list[list[str]]) -> list[dict[str, Any]]:
    return [
        d for path in applied_files(commands) for d in yaml.safe_load_all(path.read_text()) if d
    ]


def secret_refs(doc: Any) -> set[tuple[str, str]]:
    """(Secret name, key) of every secretKeyRef and every Secret volume's items in a manifest."""
    found: set[tuple[str, str]] = set()
    if isinstance(doc, dict):
        ref = doc.get("secretKeyRef")
        if isinstance(ref, dict) and not ref.get("optional"):
            found.add((ref["name"], ref["key"]))
        volume = doc.get("secret")
        if isinstance(volume, dict) and "secretName" in volume and not volume.get("optional"):
            for item in volume.get("items") or [{"key": "*"}]:
                found.add((volume["secretName"], item["key"]))
        for value in doc.values():
            found |= secret_refs(value)
    elif isinstance(doc, list):
        for value in doc:
            found |= secret_refs(value)
    return found


def operator_secret_refs(doc: Any) -> set[tuple[str, str]]:
    """(Secret name, key) the operator's env names for the pods it creates: each
    FINLAKE_OPERATOR__<X>_SECRET with its FINLAKE_OPERATOR__<X>_KEY."""
    if doc.get("kind") != "Deployment" or not doc["metadata"]["name"].endswith("-operator"):
        return set()
    env = {
        e["name"]: e.get("value")
        for container in doc["spec"]["template"]["spec"]["containers"]
        for e in container.get("env", [])
    }
    return {
        (value, env[name.removesuffix("_SECRET") + "_KEY"])
        for name, value in env.items()
        if name.startswith("FINLAKE_OPERATOR__") and name.endswith("_SECRET") and value
    }


def test_readme_creates_every_secret_the_prod_values_need(chart_tools: ChartTools) -> None:
    rendered = documents(chart_tools.render("-f", CHART / "values-prod.yaml"))
    needed = set().union(*(secret_refs(d) | operator_secret_refs(d) for d in rendered))
    assert ("finlake-dashboard-key", "api-key") in needed  # the operator's are read too
    assert ("finlake-registry", "password") in needed  # the check reads the render
    made = created(install_commands(), "secret")
    missing = sorted(
        (name, key) for name, key in needed if name not in made or key not in made[name] | {"*"}
    )
    assert not missing, f"README step 2 does not create these Secrets / keys: {missing}"


def test_readme_applies_no_placeholder_over_a_secret_it_creates() -> None:
    commands = install_commands()
    made = created(commands, "secret") | created(commands, "configmap")
    docs = applied_documents(commands)
    assert docs, "README applies no example"
    for doc in docs:
        assert doc["kind"] not in ("Secret", "ConfigMap") or doc["metadata"]["name"] not in made, (
            f"README applies the example {doc['kind']} {doc['metadata']['name']} over the real one"
        )
        assert "change-me" not in yaml.safe_dump(doc), f"README applies a placeholder: {doc}"


def test_readme_creates_what_the_applied_examples_reference() -> None:
    commands = install_commands()
    secrets, config_maps = created(commands, "secret"), created(commands, "configmap")
    docs = applied_documents(commands)
    assert {d["kind"] for d in docs} == {"MarketFeed", "MedallionPipeline", "AlertRule"}
    for doc in docs:
        spec = doc["spec"]
        if doc["kind"] == "MedallionPipeline" and spec.get("catalogSecret"):
            assert spec["catalogSecret"]["name"] in secrets, spec["catalogSecret"]
        if doc["kind"] == "MarketFeed" and spec.get("symbolsFrom"):
            ref = spec["symbolsFrom"]
            assert ref["key"] in config_maps.get(ref["name"], set()), ref
        for channel in spec.get("channels", []) if doc["kind"] == "AlertRule" else []:
            if "secretRef" in channel:
                ref = channel["secretRef"]
                assert ref["key"] in secrets.get(ref["name"], set()), ref


def test_the_pipeline_secret_keys_are_settings_the_spark_jobs_read() -> None:
    # The operator loads spec.catalogSecret as the Spark pods' environment (envFrom).
    from finlake.config import FinlakeSettings

    commands = install_commands()
    pipeline = next(d for d in applied_documents(commands) if d["kind"] == "MedallionPipeline")
    name = pipeline["spec"]["catalogSecret"]["name"]
    keys = created(commands, "secret")[name]
    settings = FinlakeSettings.model_validate({})
    fields = {f"FINLAKE_LAKE__{field.upper()}" for field in type(settings.lake).model_fields}
    assert keys
    assert keys <= fields, keys - fields
    placeholder = next(
        d
        for d in yaml.safe_load_all((REPO / "manifests/examples/references.yaml").read_text())
        if d and d["kind"] == "Secret" and d["metadata"]["name"] == name
    )
    assert set(placeholder["stringData"]) == keys


def test_the_checks_catch_the_old_readme() -> None:
    old = """## Install on Kubernetes
```bash
kubectl -n finlake create secret generic finlake-catalog --from-literal=password=...
kubectl -n finlake apply -f manifests/examples/
```
"""
    commands = install_commands(old)
    assert "finlake-registry" not in created(commands, "secret")
    placeholders = [d for d in applied_documents(commands) if d["kind"] == "Secret"]
    assert placeholders
    assert any("change-me" in yaml.safe_dump(d) for d in placeholders)
