"""The custom-resource envelope shared by every finlake spec: one YAML drives the operator and the
local runner (DESIGN.md "One spec, two runtimes").

A file holds one or more YAML documents ``apiVersion: finlake.io/v1alpha1``, ``kind``, ``metadata``,
``spec``; :func:`load_resources` validates each document against its kind's spec model and reports
every problem as one line naming the file, the document and the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from finlake.errors import ConfigurationError

GROUP = "finlake.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d))+$"
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION = timedelta(days=3660)
"""The longest duration any spec takes (ten years): longer ones are typos, and would overflow
the date arithmetic of the services that use them (a cooldown added to now)."""


def parse_duration(value: object) -> timedelta:
    """``"90s"``, ``"1h30m"``, ``"500ms"`` or a number of seconds as a :class:`timedelta`."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration is a string such as '30s', '5m' or '1h'")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a number of seconds")
        if value < 0:
            raise ValueError("a duration cannot be negative")
        # Whole milliseconds, as every duration is written and used (0.0004 s would pass a
        # "longer than 0s" check and then be 0 ms where it divides).
        millis = value * 1000
        if abs(millis - round(millis)) > 1e-6:
            raise ValueError(f"{value!r} s is not a whole number of milliseconds")
        return _bounded(round(millis) / 1000, value)
    if not isinstance(value, str) or not re.fullmatch(DURATION_PATTERN, value.strip()):
        raise ValueError(f"{value!r} is not a duration such as '30s', '5m', '1h30m' or '1d'")
    seconds = sum(
        int(amount) * _UNITS[unit] for amount, unit in _DURATION_PART.findall(value.strip())
    )
    return _bounded(seconds, value)


def _bounded(seconds: float, value: object) -> timedelta:
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{value!r} is longer than {MAX_DURATION.days}d, the longest duration")
    return timedelta(seconds=seconds)


def check_regex(pattern: str) -> str:
    """``pattern`` if Python compiles it; otherwise ValueError saying why (a syntax error, or a
    repeat count or nesting its compiler cannot hold: ``A{4294967296}`` is an OverflowError)."""
    try:
        re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as error:
        raise ValueError(f"{pattern!r} is not a regular expression: {error}") from error
    return pattern


def format_duration(value: timedelta) -> str:
    """The shortest ``1h30m`` form of ``value`` (whole milliseconds)."""
    millis = round(value.total_seconds() * 1000)
    if millis == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        amount, millis = divmod(millis, size)
        if amount:
            parts.append(f"{amount}{unit}")
    if millis:
        parts.append(f"{millis}ms")
    return "".join(parts)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN}),
]
"""A duration written as in Kubernetes and Prometheus: ``30s``, ``5m``, ``1h30m``, ``1d``."""

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"
"""A Kubernetes resource quantity (``100m``, ``256Mi``, ``1Gi``)."""


def cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    """One CEL rule for the CRD schema; the matching pydantic validator enforces it locally."""
    validation: JsonDict = {"rule": rule, "message": message}
    if field_path is not None:
        validation["fieldPath"] = field_path
    return validation


class SpecModel(BaseModel):
    """Base of every CR spec: camelCase on the wire, unknown fields refused, immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, alias_generator=to_camel
    )


class ObjectMeta(BaseModel):
    """The part of Kubernetes' ObjectMeta a spec file uses; server-set fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str = Field(max_length=63, pattern=DNS_LABEL, description="Resource name (DNS label).")
    namespace: str = Field(default="default", pattern=DNS_LABEL)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int | None = None


SpecT = TypeVar("SpecT", bound=SpecModel)


class Resource(BaseModel, Generic[SpecT]):
    """One custom resource: ``apiVersion``, ``kind``, ``metadata`` and a validated ``spec``."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    api_version: str = Field(alias="apiVersion", pattern=f"^{re.escape(API_VERSION)}$")
    kind: str
    metadata: ObjectMeta
    spec: SpecT

    @property
    def name(self) -> str:
        """``metadata.name``."""
        return self.metadata.name

    @property
    def paused(self) -> bool:
        """True when the ``finlake.io/paused`` annotation is ``"true"``."""
        return self.metadata.annotations.get(PAUSED_ANNOTATION, "").lower() == "true"


PAUSED_ANNOTATION = f"{GROUP}/paused"

_KINDS: dict[str, type[SpecModel]] = {}


def register_kind(kind: str, spec: type[SpecModel]) -> None:
    """Make ``kind`` loadable by :func:`load_resources` with ``spec`` as its spec model."""
    _KINDS[kind] = spec


def kinds() -> Mapping[str, type[SpecModel]]:
    """Every registered kind and its spec model."""
    return dict(_KINDS)


@dataclass(frozen=True)
class Problem:
    """One reason a document was refused, in one line."""

    source: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


class ResourceError(ConfigurationError):
    """One or more documents in spec files are invalid; ``problems`` has one line each."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = str(problems[0]) if problems else "no problems"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(first + more)


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(document)"


def validate_document(document: object, source: str) -> tuple[Resource[Any] | None, list[Problem]]:
    """Validate one parsed YAML document; returns the resource or the problems found."""
    if not isinstance(document, dict):
        return None, [Problem(source, "a document must be a mapping with apiVersion/kind/spec")]
    kind = document.get("kind")
    spec_model = _KINDS.get(kind) if isinstance(kind, str) else None
    if spec_model is None:
        known = ", ".join(sorted(_KINDS))
        return None, [Problem(source, f"kind: {kind!r} is not one of {known}")]
    metadata = document.get("metadata")
    name = metadata.get("name", "?") if isinstance(metadata, dict) else "?"
    where = f"{source} {kind}/{name}"
    try:
        resource: Resource[Any] = Resource[spec_model].model_validate(document)  # type: ignore[valid-type]
    except ValidationError as error:
        return None, [
            Problem(where, f"{_location(e['loc'])}: {_clean(e['msg'])}") for e in error.errors()
        ]
    return resource, []


def _clean(message: str) -> str:
    return message.removeprefix("Value error, ")


def is_other_api_group(document: object) -> bool:
    """True for a document of another API group (a ConfigMap, a Secret, another operator's kind).

    A document without ``apiVersion``, or of any ``finlake.io`` version, is not: those are ours
    (or typos of ours) and must be validated, never skipped.
    """
    if not isinstance(document, dict):
        return False
    api_version = document.get("apiVersion")
    if not isinstance(api_version, str) or not api_version:
        return False
    group = api_version.rpartition("/")[0]
    return group != GROUP


SPEC_SUFFIXES = (".yaml", ".yml")


def spec_files(paths: Iterable[Path | str]) -> list[Path]:
    """The files behind ``paths``: files as given, folders expanded to their *.yaml / *.yml."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in SPEC_SUFFIXES))
        else:
            files.append(path)
    return files


def load_resources(
    paths: Iterable[Path | str], kind: str | None = None, *, skip_other_groups: bool = False
) -> list[Resource[Any]]:
    """Every document of every file (folders: their YAML files), validated; raises
    :class:`ResourceError` listing all problems.

    With ``kind``, documents of other kinds are refused too. By default a document of another API
    group is refused as well (a rule file holding a stray Secret is a mistake worth reporting);
    ``skip_other_groups`` leaves such documents out instead, for folders written for ``kubectl
    apply -f`` (a resource next to the ConfigMaps and Secrets it references).
    """
    resources: list[Resource[Any]] = []
    problems: list[Problem] = []
    for folder in [Path(p) for p in paths if Path(p).is_dir()]:
        if not spec_files([folder]):
            problems.append(Problem(str(folder), f"no {' or '.join(SPEC_SUFFIXES)} files"))
    for path in spec_files(paths):
        try:
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except OSError as error:
            problems.append(Problem(str(path), f"cannot read: {error.strerror or error}"))
            continue
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            reason = " ".join(str(error).split())
            problems.append(Problem(str(path), f"not valid YAML: {reason}"))
            continue
        except RecursionError:
            problems.append(Problem(str(path), "not valid YAML: nested too deeply"))
            continue
        documents = [d for d in documents if d is not None]
        if not documents:
            problems.append(Problem(str(path), "no documents"))
        for index, document in enumerate(documents):
            if skip_other_groups and is_other_api_group(document):
                continue
            source = f"{path}[{index}]"
            resource, found = validate_document(document, source)
            if resource is not None and kind is not None and resource.kind != kind:
                found = [Problem(source, f"kind: expected {kind}, got {resource.kind}")]
            problems.extend(found)
            if resource is not None and not found:
                resources.append(resource)
    if problems:
        raise ResourceError(problems)
    names = [(r.kind, r.metadata.namespace, r.name) for r in resources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ResourceError(
            [
                Problem(f"{k}/{n}", f"defined more than once in namespace {ns}")
                for k, ns, n in duplicates
            ]
        )
    return resources
