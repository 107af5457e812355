"""What every child shares: deterministic names, labels, owner references, hardened pods."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import yaml

from finlake.contracts.resources import API_VERSION
from finlake.contracts.storage import PersistenceSpec

MANAGED_BY = "finlake-operator"
PLATFORM_CONFIG_MAP = "finlake-platform"
OWNER_KIND_LABEL = "finlake.io/owner-kind"
OWNER_NAME_LABEL = "finlake.io/owner-name"
CONFIG_HASH_ANNOTATION = "finlake.io/config-hash"
STATE_VOLUME = "state"
"""The name of the volume a child keeps its state on (its pod's disk or its claim)."""


@dataclass(frozen=True)
class Owner:
    """The custom resource a child belongs to."""

    kind: str
    name: str
    namespace: str
    uid: str
    generation: int = 1

    def child_name(self, suffix: str) -> str:
        """A deterministic child name: an operator restart finds, never duplicates, its children."""
        name = f"{self.name}-{suffix}"
        if len(name) <= 63:
            return name
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        return f"{name[: 63 - 9].rstrip('-')}-{digest}"


def selector_labels(owner: Owner, component: str) -> dict[str, str]:
    """Labels that pick the pods of one component of one resource."""
    return {
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/component": component,
        OWNER_KIND_LABEL: owner.kind,
    }


def child_labels(owner: Owner, component: str, app: str) -> dict[str, str]:
    """The labels of every child: Kubernetes' recommended ones plus the owning resource."""
    return {
        "app.kubernetes.io/name": app,
        **selector_labels(owner, component),
        "app.kubernetes.io/part-of": "finlake",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        OWNER_NAME_LABEL: owner.name,
    }


def resource_document(owner: Owner, kind: str, spec: dict[str, Any]) -> str:
    """The resource as a YAML document: the exact file a local run (or the job) reads."""
    document = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": owner.name, "namespace": owner.namespace},
        "spec": spec,
    }
    return yaml.safe_dump(document, sort_keys=False)


def owner_reference(owner: Owner, *, controller: bool = True) -> dict[str, Any]:
    """An ownerReference: the garbage collector deletes the child with its resource."""
    return {
        "apiVersion": API_VERSION,
        "kind": owner.kind,
        "name": owner.name,
        "uid": owner.uid,
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def metadata(owner: Owner, name: str, component: str, app: str) -> dict[str, Any]:
    """The metadata of a child owned (and controlled) by ``owner``."""
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": child_labels(owner, component, app),
        "ownerReferences": [owner_reference(owner)],
    }


def cluster_ip_service(
    owner: Owner,
    name: str,
    labels: tuple[str, str],
    selector: dict[str, str],
    port: tuple[str, int, int | str],
) -> dict[str, Any]:
    """A ClusterIP Service owned by ``owner``: ``labels`` is (component, app), ``port`` is
    (name, port, target port or its name)."""
    port_name, number, target = port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(owner, name, *labels),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": port_name, "port": number, "targetPort": target, "protocol": "TCP"}],
        },
    }


def config_hash(data: Any) -> str:
    """A short stable hash of ``data``; in a pod template it rolls the pods when config changes."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def hardened_container_security() -> dict[str, Any]:
    """Non-root, read-only root filesystem, no privilege escalation, no capabilities."""
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def platform_env_from() -> list[dict[str, Any]]:
    """Kafka, registry and catalog endpoints from the chart's ConfigMap (optional)."""
    return [{"configMapRef": {"name": PLATFORM_CONFIG_MAP, "optional": True}}]


def build_state_claim(
    owner: Owner, name: str, labels: tuple[str, str], persistence: PersistenceSpec
) -> dict[str, Any]:
    """The ReadWriteOnce PersistentVolumeClaim of a part's state (``labels``: component, app).

    Without a ``storageClassName`` the API server gives the claim the cluster's default class
    (a field this manager never sets, so re-applying leaves it alone)."""
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": persistence.size}},
    }
    if persistence.storage_class_name is not None:
        spec["storageClassName"] = persistence.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(owner, name, *labels),
        "spec": spec,
    }


def state_volume(claim: str | None) -> dict[str, Any]:
    """The state volume of a pod: its claim, else an emptyDir (the pod's own disk)."""
    if claim is None:
        return {"name": STATE_VOLUME, "emptyDir": {}}
    return {"name": STATE_VOLUME, "persistentVolumeClaim": {"claimName": claim}}


def deployment_strategy(*, single_writer: bool) -> dict[str, Any]:
    """How a Deployment replaces its pods: a single writer (of its state's claim, of one request
    budget) stops before its successor starts; anything else rolls. (A Deployment turning
    Recreate loses the ``rollingUpdate`` the API server defaulted: ``reconcile``.)"""
    return {"type": "Recreate" if single_writer else "RollingUpdate"}


def state_pod_security(user: int, claim: str | None) -> dict[str, Any]:
    """The pod security context of a service pod running as ``user`` with its state volume.

    On a claim the user's group owns the files (a new volume is root's); ownership is changed
    only when the volume's root does not match already, not file by file at every start."""
    security: dict[str, Any] = {"runAsNonRoot": True, "runAsUser": user}
    if claim is not None:
        security |= {"fsGroup": user, "fsGroupChangePolicy": "OnRootMismatch"}
    return security


@dataclass(frozen=True)
class PlatformDefaults:
    """What the chart's values give every child a resource does not set itself: the images of
    the producers and Spark jobs, the Secrets their images are pulled with, and the Secrets of
    the services they talk to."""

    producer_image: str | None = None
    spark_image: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    registry_password: tuple[str, str] | None = None
    """(Secret, key) of the schema registry's basic-auth password."""
    feature_store_password: tuple[str, str] | None = None
    """(Secret, key) of the feature store PostgreSQL's password (the transactions batch
    materializes the fraud features there)."""


REGISTRY_PASSWORD_ENV = "FINLAKE_REGISTRY__BASIC_AUTH_PASSWORD"
FEATURE_STORE_PASSWORD_ENV = "FINLAKE_ML__POSTGRES_PASSWORD"


def with_registry_password(children: list[dict[str, Any]], secret: tuple[str, str] | None) -> None:
    """Give the registry's password to every process that reads schemas: the Deployments'
    containers (producers, alert services) and the Spark drivers (the executors decode with the
    schemas their driver fetched)."""
    with_secret_env(children, REGISTRY_PASSWORD_ENV, secret)


def with_secret_env(
    children: list[dict[str, Any]], variable: str, secret: tuple[str, str] | None
) -> None:
    """Set ``variable`` from the key of a Secret, ``(name, key)``, in every container of
    ``children`` (Deployments) and every Spark driver (Spark applications, scheduled or not)."""
    if secret is None:
        return
    name, key = secret
    entry = {"name": variable, "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}
    for child in children:
        spec = child.get("spec", {})
        if child["kind"] == "Deployment":
            envs = [c.setdefault("env", []) for c in spec["template"]["spec"]["containers"]]
        elif child["kind"] == "SparkApplication":
            envs = [spec["driver"].setdefault("env", [])]
        elif child["kind"] == "ScheduledSparkApplication":
            envs = [spec["template"]["driver"].setdefault("env", [])]
        else:
            continue
        for env in envs:
            if all(existing["name"] != variable for existing in env):
                env.append(entry)


def with_pull_secrets(children: list[dict[str, Any]], names: tuple[str, ...]) -> None:
    """Add the image pull Secrets to every pod-making child (Deployments, Spark applications)."""
    if not names:
        return
    for child in children:
        if child["kind"] == "Deployment":
            pod = child["spec"]["template"]["spec"]
            pod["imagePullSecrets"] = [{"name": name} for name in names]
        elif child["kind"] == "SparkApplication":
            child["spec"]["imagePullSecrets"] = list(names)
        elif child["kind"] == "ScheduledSparkApplication":
            child["spec"]["template"]["imagePullSecrets"] = list(names)


TMP_VOLUME = {"name": "tmp", "emptyDir": {}}
TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}
"""A writable /tmp for containers with a read-only root filesystem (Python's tempfile, SQLite's
temporary files)."""
