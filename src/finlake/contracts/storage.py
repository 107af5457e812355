"""Durable state for the children the operator runs: a PersistentVolumeClaim per stateful part.

Without it a child keeps its state (a stream's checkpoint, the alert service's delivery log and
silences, the Yahoo poller's watermarks) on its pod's own disk, which a rescheduled pod (a node
drain, an upgrade, an eviction) starts without. With it the operator creates one ReadWriteOnce
claim per part, owned by the resource, mounts it where the part keeps its state, and deletes it
with the part (the resource deleted, or the part or ``persistence`` removed from the spec).
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from finlake.contracts.resources import QUANTITY, SpecModel, cel

STORAGE_CLASS = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""A StorageClass name (a DNS subdomain)."""
_CLASS = "(has({0}.storageClassName) ? {0}.storageClassName : '')"


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
        pattern=QUANTITY,
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
