"""Write kubeconform JSON schemas: from CustomResourceDefinitions, or standalone Kubernetes schemas.

crd_to_jsonschema.py crds DEST CRD.yaml...
    One schema per served version of each CRD, at DEST/<group>/<kind>_<version>.json, kubeconform's
    `-schema-location 'DEST/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json'`. Strict
    the way the API server is: an object with `properties` and no `additionalProperties` refuses
    unknown fields, unless it is marked `x-kubernetes-preserve-unknown-fields`.
crd_to_jsonschema.py kubernetes SRC DEST
    kubernetes-validate's "-local" schemas $ref one shared `/api/_definitions.json`, which
    kubeconform cannot load. Each kind's schema is written to DEST with the definitions it uses
    inlined under `$defs`.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

Schema = dict[str, Any]
# A kind's file refers to the shared file; the shared definitions refer to each other locally.
DEFINITIONS_REFS = ("/api/_definitions.json#/$defs/", "#/$defs/")


def openapi_to_jsonschema(node: Any) -> Any:
    """Translate a CRD's OpenAPI v3 schema node into JSON Schema (draft 7) semantics."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: Schema = {key: openapi_to_jsonschema(value) for key, value in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        for key in ("type", "format"):
            out.pop(key, None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    # OpenAPI 3.0 marks a bound exclusive with a boolean; JSON Schema draft 7 names the bound.
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(out.get(exclusive), bool) and out.pop(exclusive) and bound in out:
            out[exclusive] = out.pop(bound)
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    preserve = out.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def crd_schemas(crd: Schema) -> Iterator[tuple[str, Schema]]:
    """Yield (relative path, schema) for every served version of one CRD."""
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    for version in crd["spec"]["versions"]:
        if not version.get("served", True):
            continue
        schema = openapi_to_jsonschema(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
        properties = schema.setdefault("properties", {})
        # The CRD schema leaves these to the API server; kubeconform must see them as known.
        properties["apiVersion"] = {"type": "string", "enum": [f"{group}/{version['name']}"]}
        properties["kind"] = {"type": "string", "enum": [kind]}
        properties.setdefault("metadata", {"type": "object"})
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"
        yield f"{group}/{kind.lower()}_{version['name']}.json", schema


def write_crd_schemas(dest: Path, crd_files: list[Path]) -> int:
    """Convert every CustomResourceDefinition in the files; return how many schemas were written."""
    count = 0
    for path in crd_files:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            for relative, schema in crd_schemas(doc):
                target = dest / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(schema, indent=1, sort_keys=True))
                count += 1
    if count == 0:
        raise SystemExit(f"error: no CustomResourceDefinition in {[str(p) for p in crd_files]}")
    return count


def definition_name(ref: str) -> str | None:
    """The shared definition a $ref points at, if it points at one."""
    for prefix in DEFINITIONS_REFS:
        if ref.startswith(prefix):
            return ref.removeprefix(prefix)
    return None


def referenced(node: Any) -> Iterator[str]:
    """Yield the names of the shared definitions a schema node refers to."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        name = definition_name(ref) if isinstance(ref, str) else None
        if name is not None:
            yield name
        for value in node.values():
            yield from referenced(value)
    elif isinstance(node, list):
        for value in node:
            yield from referenced(value)


def localize(node: Any) -> Any:
    """Point every shared-definition $ref at the schema's own `$defs`."""
    if isinstance(node, dict):
        return {
            key: (
                f"#/$defs/{definition_name(value) or value}"
                if key == "$ref" and isinstance(value, str) and definition_name(value)
                else localize(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [localize(value) for value in node]
    return node


def write_standalone_kubernetes(src: Path, dest: Path) -> int:
    """Inline the used definitions into each kind's schema; return how many were written."""
    definitions: dict[str, Schema] = json.loads((src / "_definitions.json").read_text())["$defs"]
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted(src.glob("*.json")):
        schema = json.loads(path.read_text())
        if "x-kubernetes-group-version-kind" not in schema:
            continue  # a definition, not a kind kubeconform looks up
        needed: dict[str, Schema] = {}
        pending = list(referenced(schema))
        while pending:
            name = pending.pop()
            if name not in needed:
                needed[name] = definitions[name]
                pending.extend(referenced(definitions[name]))
        schema.pop("$id", None)
        schema["$defs"] = needed
        (dest / path.name).write_text(json.dumps(localize(schema), separators=(",", ":")))
        count += 1
    if count == 0:
        raise SystemExit(f"error: no Kubernetes kind schemas in {src}")
    return count


def main(argv: list[str]) -> None:
    """Dispatch on the mode given as the first argument."""
    usage = "usage: crd_to_jsonschema.py crds DEST CRD.yaml... | kubernetes SRC DEST"
    if len(argv) >= 3 and argv[0] == "crds":
        count = write_crd_schemas(Path(argv[1]), [Path(p) for p in argv[2:]])
    elif len(argv) == 3 and argv[0] == "kubernetes":
        count = write_standalone_kubernetes(Path(argv[1]), Path(argv[2]))
    else:
        raise SystemExit(usage)
    sys.stderr.write(f"crd_to_jsonschema: wrote {count} schemas\n")


if __name__ == "__main__":
    main(sys.argv[1:])
