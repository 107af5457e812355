"""Durable state for the children the operator runs: a PersistentVolumeClaim per stateful part.

Without it a child keeps its state (a stream's checkpoint, the alert service's delivery log and
silences, the Yahoo poller's watermarks) on its pod's own disk, which a rescheduled pod (a node
drain, an upgrade, an eviction) starts without. With it the operator creates one ReadWriteOnce
claim per part, owned by the resource, mounts it where the part keeps its state, and deletes it
with the part (the resource deleted, or the part or ``persistence`` removed from the spec). The
claims are ReadWriteOnce (one node): the operator runs one writer per claim (one replica, replaced
with Recreate; the spark-operator starts a driver again once the last one ended).
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from finlake.contracts.resources import SpecModel, cel

STORAGE_CLASS = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""A StorageClass name (a DNS subdomain)."""
_CLASS = "(has({0}.storageClassName) ? {0}.storageClassName : '')"
STORAGE_SIZE = r"^(0*[1-9][0-9]*(\.[0-9]+)?|0*\.[0-9]*[1-9][0-9]*)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)$"
"""A storage quantity above zero with a unit (``512Mi``, ``1Gi``, ``1.5Ti``); no bare or milli
bytes, which the API server would refuse or round."""


class PersistenceSpec(SpecModel):
    """A PersistentVolumeClaim (ReadWriteOnce) for a part's state."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"{_CLASS.format('self')} == {_CLASS.format('oldSelf')}",
                    "storageClassName cannot change once the claim exists (remove persistence, "
                    "which deletes the claim and its state, then add it again)",
                    ".storageClassName",
                ),
            ]
        }
    )

    size: str = Field(
        default="1Gi",
        pattern=STORAGE_SIZE,
        max_length=32,
        description="Requested storage. A bound claim may grow if its StorageClass allows "
        "expansion; it never shrinks.",
    )
    storage_class_name: str | None = Field(
        default=None,
        pattern=STORAGE_CLASS,
        max_length=253,
        description="StorageClass of the claim; default: the cluster's default class.",
    )
