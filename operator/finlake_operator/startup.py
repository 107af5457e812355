"""Operator settings, probes and metrics, registered with the handlers (kopf docs/configuration)."""

from __future__ import annotations

import logging
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException
from prometheus_client import start_http_server

from finlake.contracts.resources import GROUP, VERSION
from finlake_operator.config import OperatorOptions
from finlake_operator.crds import KINDS
from finlake_operator.handlers import register
from finlake_operator.kube import Kube, api_error_message

FINALIZER = f"{GROUP}/finalizer"
TIMER_EXIT_POLL_S = 1.0
_metrics_started: set[int] = set()


class QuietResync(logging.Filter):
    """Drops the success line of every resync timer run (one per resource per interval)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Timer 'resync-") and message.endswith("succeeded."))


def quiet_logs() -> None:
    """Keep the operator's log about changes: no routine resync or probe lines."""
    logging.getLogger("kopf.objects").addFilter(QuietResync())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per metrics read otherwise


def build_registry(kube: Kube, options: OperatorOptions) -> kopf.OperatorRegistry:
    """A registry holding every handler, the startup configuration and the liveness probe."""
    registry = kopf.OperatorRegistry()
    register(registry, kube, options)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # A private registry has none of kopf's default login handlers: in-cluster, else kubeconfig.
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=GROUP, key="last-handled-configuration"
        )
        # Restart each watch regularly so a silently stalled stream cannot go unnoticed.
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.posting.level = logging.INFO
        settings.peering.lifetime = options.peering_lifetime_s
        # A resource deleted while its resync timer runs keeps its finalizer until kopf sees the
        # timer gone, and kopf looks again only every cancellation_polling seconds (60 by
        # default): `kubectl delete` would hang a minute for a resync that ends in a second.
        settings.background.cancellation_polling = TIMER_EXIT_POLL_S
        if options.metrics_port and options.metrics_port not in _metrics_started:
            start_http_server(options.metrics_port, addr=options.liveness_host)
            _metrics_started.add(options.metrics_port)
        logger.info("finlake operator configured")

    @kopf.on.probe(id="api", registry=registry, errors=kopf.ErrorsMode.PERMANENT, timeout=10)
    def watched_resources_are_listable(**_: Any) -> str:
        # A watch cannot survive what makes a list fail (API server gone, CRD removed, RBAC
        # revoked), so the liveness probe fails with it and the kubelet restarts the operator.
        scopes = [f"namespaces/{ns}/" for ns in options.namespaces] or [""]
        for kind in KINDS:
            for scope in scopes:
                path = f"/apis/{GROUP}/{VERSION}/{scope}{kind.plural}"
                try:
                    kube.probe(path)
                except ApiException as error:
                    raise RuntimeError(f"cannot list {path}: {api_error_message(error)}") from None
        return "ok"

    return registry
