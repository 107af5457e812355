"""Before ``helm uninstall``: delete a release's own finlake resources while the operator runs.

The operator puts its finalizer on every resource it reconciles and removes it once the
resource's children are cleaned up. ``helm uninstall`` deletes the operator together with the
example resources the chart installed, so nothing would remove those finalizers: the resources
(and a namespace being deleted) would hang. The chart's pre-delete hook runs
``finlake operator cleanup`` first, while the operator is still there.
"""

from __future__ import annotations

from collections.abc import Callable

from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_delay, wait_fixed

from finlake.contracts.resources import GROUP, VERSION
from finlake_operator.crds import KINDS
from finlake_operator.kube import Kube, ObjectRef

RELEASE_NAME = "meta.helm.sh/release-name"
RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
POLL_S = 1.0
FINALIZER_HINT = (
    f"The operator removes their finalizer ({GROUP}/finalizer) once their children are "
    "cleaned up: is it running (kubectl get deploy -l app.kubernetes.io/component=operator)? "
    "`helm uninstall --no-hooks` skips this step and leaves them to a later operator."
)


def release_resources(kube: Kube, namespace: str, release: str) -> list[ObjectRef]:
    """The finlake resources in ``namespace`` that Helm release ``release`` installed."""
    found = []
    for kind in KINDS:
        collection = ObjectRef(f"{GROUP}/{VERSION}", kind.kind, namespace, "")
        for obj in kube.list(collection, label_selector=""):
            annotations = obj["metadata"].get("annotations") or {}
            if (
                annotations.get(RELEASE_NAME) == release
                and annotations.get(RELEASE_NAMESPACE) == namespace
            ):
                name = obj["metadata"]["name"]
                found.append(ObjectRef(collection.api_version, kind.kind, namespace, name))
    return found


def delete_and_wait(
    kube: Kube,
    refs: list[ObjectRef],
    timeout_s: float,
    *,
    report: Callable[[str], None] = print,
    poll_s: float = POLL_S,
) -> list[ObjectRef]:
    """Delete ``refs`` and wait until they are gone; those still there after ``timeout_s``."""
    for ref in refs:
        if kube.delete(ref):
            report(f"deleting {ref}")

    def remaining() -> list[ObjectRef]:
        return [ref for ref in refs if kube.get(ref) is not None]

    def still_there(state: RetryCallState) -> list[ObjectRef]:
        return state.outcome.result() if state.outcome is not None else refs

    waiting = Retrying(
        stop=stop_after_delay(timeout_s),
        wait=wait_fixed(poll_s),
        retry=retry_if_result(bool),
        retry_error_callback=still_there,  # the last answer, not a RetryError, at the deadline
    )
    left: list[ObjectRef] = waiting(remaining)
    return left
