"""The SparkApplication spec every MedallionPipeline job runs with, and its children's names."""

from __future__ import annotations

from typing import Any

from finlake.contracts.medallion_pipeline import (
    KIND,
    MedallionPipelineSpec,
    PipelineFlow,
    SparkJob,
    detection_env,
    stream_env,
)
from finlake_operator.builders.common import (
    CONFIG_HASH_ANNOTATION,
    STATE_VOLUME,
    Owner,
    child_labels,
    config_hash,
    platform_env_from,
    resource_document,
    state_volume,
)

APP = "finlake-spark"
SPARK_API_VERSION = "sparkoperator.k8s.io/v1beta2"
SPEC_MOUNT = "/etc/finlake/pipeline"
SPEC_FILE = "pipeline.yaml"
STATE_MOUNT = "/var/lib/finlake"
"""Every driver's $FINLAKE_HOME: its state volume (an emptyDir, or a streaming job's claim)."""
SPARK_GID = 185
"""The group of the apache/spark image's ``spark`` user, which the drivers run as."""
STREAMING_JOBS = (SparkJob.STREAM, SparkJob.ALERT_DETECTION)
DOCUMENT_READ_BY: dict[SparkJob, tuple[str, ...]] = {
    SparkJob.STREAM: ("flow", "layers", "expectations"),
    SparkJob.ALERT_DETECTION: ("flow",),
}
"""The spec fields a streaming job reads from the mounted pipeline document when it starts;
everything else it takes from its own SparkApplication (env, arguments, sizes, sparkConf)."""


def spec_config_map_name(owner: Owner) -> str:
    """The ConfigMap holding the pipeline document the jobs load (as the local runner does)."""
    return owner.child_name("pipeline")


def stream_name(owner: Owner) -> str:
    """Name of the streaming SparkApplication."""
    return owner.child_name("stream")


def batch_name(owner: Owner) -> str:
    """Name of the hourly batch ScheduledSparkApplication."""
    return owner.child_name("batch")


def detection_name(owner: Owner) -> str:
    """Name of the alert detection SparkApplication."""
    return owner.child_name("alert-detection")


def checkpoints_name(owner: Owner, job: SparkJob) -> str:
    """Name of the claim holding a streaming job's checkpoints (``spec.persistence``)."""
    return owner.child_name(f"{job.value.removeprefix('market-')}-checkpoints")


def maintenance_name(owner: Owner) -> str:
    """Name of the daily maintenance ScheduledSparkApplication."""
    return owner.child_name("maintenance")


def metrics_service_name(owner: Owner) -> str:
    """Name of the streaming driver's metrics Service."""
    return owner.child_name("stream-metrics")


def default_metrics_url(owner: Owner, pipeline: MedallionPipelineSpec) -> str:
    """Where the streaming driver's /metrics answers inside the cluster."""
    service = metrics_service_name(owner)
    return f"http://{service}.{owner.namespace}.svc:{pipeline.spark.metrics_port}/metrics"


def pipeline_document(owner: Owner, pipeline: MedallionPipelineSpec) -> str:
    """The resource as a YAML document: the exact file a local run would load."""
    return resource_document(owner, KIND, pipeline.wire())


def document_hash(owner: Owner, pipeline: MedallionPipelineSpec, job: SparkJob) -> str:
    """The driver's config hash: of the spec fields the job reads from the pipeline document.

    The spark-operator resubmits a SparkApplication on any change of its spec, so a streaming
    driver's hash covers only what that driver reads (an edit of the batch, the maintenance or
    the freshness objective leaves the stream and detection running). A scheduled run reads the
    document when it starts: its template carries the hash of the whole spec, which restarts
    nothing."""
    fields = DOCUMENT_READ_BY.get(job)
    if fields is None:
        return config_hash(pipeline_document(owner, pipeline))
    wired = pipeline.wire()
    return config_hash({field: wired.get(field) for field in fields})


def _env(pipeline: MedallionPipelineSpec, owner: Owner, job: SparkJob) -> list[dict[str, str]]:
    values = {
        "FINLAKE_PIPELINE_FILE": f"{SPEC_MOUNT}/{SPEC_FILE}",
        "FINLAKE_PIPELINE_NAME": owner.name,
        # Over the platform ConfigMap's FINLAKE_HOME: the driver's state volume.
        "FINLAKE_HOME": STATE_MOUNT,
    }
    if job is SparkJob.ALERT_DETECTION:
        values |= detection_env(pipeline)
    elif pipeline.flow is PipelineFlow.MARKET:
        values |= stream_env(pipeline)
    return [{"name": name, "value": value} for name, value in sorted(values.items())]


def application_spec(
    owner: Owner, pipeline: MedallionPipelineSpec, job: SparkJob, arguments: list[str]
) -> dict[str, Any]:
    """A SparkApplication spec (also the template of the scheduled ones)."""
    spark = pipeline.spark
    component = job.value
    env_from = platform_env_from()
    if pipeline.catalog_secret is not None:
        env_from.append({"secretRef": {"name": pipeline.catalog_secret.name}})
    labels = child_labels(owner, component, APP)
    driver: dict[str, Any] = {
        "cores": spark.driver.cores,
        "memory": spark.driver.memory,
        "serviceAccount": spark.service_account,
        "labels": labels,
        "annotations": {
            CONFIG_HASH_ANNOTATION: document_hash(owner, pipeline, job),
        },
        "env": _env(pipeline, owner, job),
        "envFrom": env_from,
        "configMaps": [{"name": spec_config_map_name(owner), "path": SPEC_MOUNT}],
        "ports": [{"name": "metrics", "containerPort": spark.metrics_port, "protocol": "TCP"}],
    }
    if spark.driver_memory_overhead is not None:
        driver["memoryOverhead"] = spark.driver_memory_overhead
    claim = _checkpoints_claim(owner, pipeline, job)
    driver["volumeMounts"] = [{"name": STATE_VOLUME, "mountPath": STATE_MOUNT}]
    if claim is not None:
        # A new volume is root's: the spark user's group may write it (ownership changed only
        # when the volume's root does not match, not file by file at every driver start).
        driver["podSecurityContext"] = {
            "fsGroup": SPARK_GID,
            "fsGroupChangePolicy": "OnRootMismatch",
        }
    conf = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(
            max(1, spark.executor.instances * spark.executor.cores)
        ),
        **spark.conf,
    }
    return {
        "type": "Python",
        "pythonVersion": "3",
        "mode": "cluster",
        "image": spark.image,
        "imagePullPolicy": "IfNotPresent",
        "sparkVersion": spark.version,
        "mainApplicationFile": spark.main_application_file,
        "arguments": [job.value, *arguments],
        "sparkConf": conf,
        "volumes": [state_volume(claim)],
        "driver": driver,
        "executor": {
            "instances": spark.executor.instances,
            "cores": spark.executor.cores,
            "memory": spark.executor.memory,
            "labels": labels,
            "envFrom": env_from,
        },
    }


def _checkpoints_claim(owner: Owner, pipeline: MedallionPipelineSpec, job: SparkJob) -> str | None:
    """The claim a job's driver keeps $FINLAKE_HOME on, if any (``spec.persistence``).

    Only the streaming jobs keep state between runs, and all of it where their driver writes:
    the stream's driver writes its offsets and commits, detection runs its stateful tasks in its
    driver (local mode). Every other driver, and one without persistence, has an emptyDir."""
    if pipeline.persistence is None or job not in STREAMING_JOBS:
        return None
    return checkpoints_name(owner, job)
