"""A small Kubernetes API client for the children: server-side apply, get, delete, list."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from finlake.errors import ConfigurationError

FIELD_MANAGER = "finlake-operator"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
MERGE_CONTENT_TYPE = "application/merge-patch+json"

# Kinds the operator touches and their plural names (no discovery round trips).
PLURALS = {
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Service": "services",
    "Deployment": "deployments",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "SparkApplication": "sparkapplications",
    "ScheduledSparkApplication": "scheduledsparkapplications",
    "MarketFeed": "marketfeeds",
    "MedallionPipeline": "medallionpipelines",
    "AlertRule": "alertrules",
}


@dataclass(frozen=True)
class ObjectRef:
    """Where an object lives: apiVersion, kind, namespace, name."""

    api_version: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjectRef:
        """The reference of a manifest."""
        meta = obj["metadata"]
        return cls(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])

    def path(self, *, collection: bool = False) -> str:
        """The REST path of the object (or of its collection)."""
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        base = f"{prefix}/namespaces/{self.namespace}/{PLURALS[self.kind]}"
        return base if collection else f"{base}/{self.name}"

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """An API client from the in-cluster service account, else from the kubeconfig."""
    configuration = client.Configuration()
    try:
        if kubeconfig is not None:
            raise ConfigException("a kubeconfig was given")
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException:
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
        except (ConfigException, OSError) as error:
            where = kubeconfig or "$KUBECONFIG or ~/.kube/config"
            raise ConfigurationError(
                f"no Kubernetes API to talk to: not in a cluster, and the kubeconfig ({where}) "
                f"cannot be used: {' '.join(str(error).split())}"
            ) from None
    return client.ApiClient(configuration)


class Kube:
    """The few calls the operator needs, on plain dicts."""

    def __init__(self, api: client.ApiClient, field_manager: str = FIELD_MANAGER) -> None:
        self.api = api
        self.field_manager = field_manager

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Iterable[tuple[str, str]] = (),
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        request = self.api.param_serialize(
            method,
            path,
            query_params=list(query),
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*request, _request_timeout=30)
        response.read()  # type: ignore[no-untyped-call]
        if not 200 <= response.status <= 299:
            self.api.response_deserialize(response, {})  # raises ApiException with the reason
            raise ApiException(status=response.status, reason=response.reason)
        data: dict[str, Any] = json.loads(response.data) if response.data else {}
        return data

    def apply(self, obj: dict[str, Any], *, field_manager: str | None = None) -> dict[str, Any]:
        """Server-side apply ``obj``; conflicts with other managers are taken over (we own it)."""
        query = [("fieldManager", field_manager or self.field_manager), ("force", "true")]
        return self._request(
            "PATCH",
            ObjectRef.of(obj).path(),
            body=obj,
            query=query,
            content_type=APPLY_CONTENT_TYPE,
        )

    def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self._request("GET", ref.path())
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def delete(self, ref: ObjectRef, *, owner_uid: str | None = None) -> bool:
        """Delete the object (its dependents in the background); False if it was gone.

        With ``owner_uid``: only if that owner owns it (an object of the same name that someone
        else made is left alone), and only that very object (a precondition on its uid)."""
        body: dict[str, Any] | None = None
        if owner_uid is not None:
            found = self.get(ref)
            owners = (found or {}).get("metadata", {}).get("ownerReferences") or []
            if found is None or owner_uid not in {owner.get("uid") for owner in owners}:
                return False
            body = {"preconditions": {"uid": found["metadata"]["uid"]}}
        try:
            self._request(
                "DELETE", ref.path(), body=body, query=[("propagationPolicy", "Background")]
            )
        except ApiException as error:
            if error.status in (404, 409):  # gone, or replaced by another object meanwhile
                return False
            raise
        return True

    def merge_patch(self, ref: ObjectRef, body: dict[str, Any]) -> dict[str, Any]:
        """JSON merge patch of the object (``null`` removes a field whoever set it)."""
        return self._request("PATCH", ref.path(), body=body, content_type=MERGE_CONTENT_TYPE)

    def list(self, ref: ObjectRef, label_selector: str) -> list[dict[str, Any]]:
        """Objects of ``ref``'s kind in its namespace matching a label selector."""
        found = self._request(
            "GET", ref.path(collection=True), query=[("labelSelector", label_selector)]
        )
        items: list[dict[str, Any]] = found.get("items", [])
        return items

    def probe(self, path: str) -> None:
        """Raise unless a one-item list of ``path`` succeeds."""
        self._request("GET", path, query=[("limit", "1")])

    def patch_status(self, ref: ObjectRef, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the status subresource."""
        return self._request(
            "PATCH",
            f"{ref.path()}/status",
            body={"status": status},
            content_type=MERGE_CONTENT_TYPE,
        )


def api_error_message(error: ApiException) -> str:
    """The API server's own message for a failed call (one line)."""
    try:
        message = str(json.loads(error.body or "{}").get("message") or error.reason)
    except (ValueError, AttributeError):
        message = str(error.reason)
    return " ".join(message.split())
