"""MedallionPipeline -> spec ConfigMap, streaming SparkApplication, hourly batch and maintenance
ScheduledSparkApplications (kubeflow spark-operator v1beta2), and the driver metrics Service.

A market pipeline also gets the alert detection SparkApplication (``detection.enabled``, the
default): it evaluates the namespace's AlertRules, which its driver reads from the rules
ConfigMap the AlertRules write (mounted, optional: no rule yet is no rule); the driver hands each
micro-batch's rules to its tasks, so the executors need no mount.

A transactions pipeline (``flow: transactions``) has no stream: its children are the spec
ConfigMap, the hourly ``transactions-batch`` and the daily maintenance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from finlake.contracts.medallion_pipeline import (
    KIND,
    MedallionPipelineSpec,
    PipelineFlow,
    SparkJob,
    detection_env,
    stream_env,
)
from finlake.contracts.pipeline_jobs import ConcurrencyPolicy
from finlake.contracts.resources import API_VERSION, format_duration
from finlake_operator.builders.alert_rule import RULES_CONFIG_MAP, RULES_MOUNT
from finlake_operator.builders.common import (
    CONFIG_HASH_ANNOTATION,
    STATE_VOLUME,
    Owner,
    build_state_claim,
    child_labels,
    cluster_ip_service,
    config_hash,
    metadata,
    platform_env_from,
    state_volume,
)

APP = "finlake-spark"
SPARK_API_VERSION = "sparkoperator.k8s.io/v1beta2"
SPEC_MOUNT = "/etc/finlake/pipeline"
SPEC_FILE = "pipeline.yaml"
HISTORY_LIMIT = 3
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


@dataclass(frozen=True)
class Timing:
    """When a ScheduledSparkApplication runs: cron, time zone, overlap policy, suspended or not."""

    schedule: str
    time_zone: str
    concurrency_policy: ConcurrencyPolicy
    suspend: bool


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
    document = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": owner.name, "namespace": owner.namespace},
        "spec": pipeline.wire(),
    }
    return yaml.safe_dump(document, sort_keys=False)


def build_spec_config_map(owner: Owner, pipeline: MedallionPipelineSpec) -> dict[str, Any]:
    """The ConfigMap mounted into every driver of the pipeline."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(owner, spec_config_map_name(owner), "pipeline", APP),
        "data": {SPEC_FILE: pipeline_document(owner, pipeline)},
    }


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


def _application_spec(
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


def build_checkpoints_claims(owner: Owner, pipeline: MedallionPipelineSpec) -> list[dict[str, Any]]:
    """The checkpoints claims of the pipeline's streaming jobs (none without persistence)."""
    if pipeline.persistence is None or pipeline.flow is not PipelineFlow.MARKET:
        return []
    jobs = [SparkJob.STREAM]
    if pipeline.detection.enabled:
        jobs.append(SparkJob.ALERT_DETECTION)
    return [
        build_state_claim(
            owner, checkpoints_name(owner, job), (job.value, APP), pipeline.persistence
        )
        for job in jobs
    ]


def build_stream_application(owner: Owner, pipeline: MedallionPipelineSpec) -> dict[str, Any]:
    """The always-running streaming job (restarted by the spark-operator when it fails)."""
    spec = _application_spec(owner, pipeline, SparkJob.STREAM, [])
    spec["restartPolicy"] = {
        "type": "Always",
        "onFailureRetryInterval": 30,
        "onSubmissionFailureRetryInterval": 60,
    }
    return {
        "apiVersion": SPARK_API_VERSION,
        "kind": "SparkApplication",
        "metadata": metadata(owner, stream_name(owner), SparkJob.STREAM.value, APP),
        "spec": spec,
    }


def build_detection_application(owner: Owner, pipeline: MedallionPipelineSpec) -> dict[str, Any]:
    """The always-running alert detection job on the pipeline's topic.

    Its driver mounts the namespace's rules ConfigMap (every AlertRule's document, one key each)
    and re-reads it at each micro-batch, so a rule edit needs no restart (the kubelet refreshes
    the mount). Optional: before the first AlertRule the folder is empty and detection runs with
    no rule (``--allow-no-rules``). The executors get the rules with their tasks, not a mount.
    """
    arguments = ["--rules", RULES_MOUNT, "--allow-no-rules"]
    spec = _application_spec(owner, pipeline, SparkJob.ALERT_DETECTION, arguments)
    spec["restartPolicy"] = {
        "type": "Always",
        "onFailureRetryInterval": 30,
        "onSubmissionFailureRetryInterval": 60,
    }
    volume = "alert-rules"
    spec["volumes"].append(
        {"name": volume, "configMap": {"name": RULES_CONFIG_MAP, "optional": True}}
    )
    spec["driver"]["volumeMounts"].append(
        {"name": volume, "mountPath": RULES_MOUNT, "readOnly": True}
    )
    return {
        "apiVersion": SPARK_API_VERSION,
        "kind": "SparkApplication",
        "metadata": metadata(owner, detection_name(owner), SparkJob.ALERT_DETECTION.value, APP),
        "spec": spec,
    }


def _scheduled(
    owner: Owner,
    pipeline: MedallionPipelineSpec,
    name: str,
    job: SparkJob,
    timing: Timing,
    arguments: list[str],
) -> dict[str, Any]:
    template = _application_spec(owner, pipeline, job, arguments)
    template["restartPolicy"] = {
        "type": "OnFailure",
        "onFailureRetries": 2,
        "onFailureRetryInterval": 60,
        "onSubmissionFailureRetries": 2,
        "onSubmissionFailureRetryInterval": 60,
    }
    return {
        "apiVersion": SPARK_API_VERSION,
        "kind": "ScheduledSparkApplication",
        "metadata": metadata(owner, name, job.value, APP),
        "spec": {
            "schedule": timing.schedule,
            # Explicit: a cron without a time zone runs in the controller's local time.
            "timeZone": timing.time_zone,
            "concurrencyPolicy": timing.concurrency_policy.value,
            "suspend": timing.suspend,
            "successfulRunHistoryLimit": HISTORY_LIMIT,
            "failedRunHistoryLimit": HISTORY_LIMIT,
            "template": template,
        },
    }


def batch_job(pipeline: MedallionPipelineSpec) -> SparkJob:
    """The job of the pipeline's hourly batch."""
    if pipeline.flow is PipelineFlow.TRANSACTIONS:
        return SparkJob.TRANSACTIONS_BATCH
    return SparkJob.BATCH


def build_batch_schedule(owner: Owner, pipeline: MedallionPipelineSpec) -> dict[str, Any]:
    """The hourly batch run in the pipeline's time zone: the market gold recomputation (late
    data), or the transactions batch (new bronze -> silver -> summaries, then the features)."""
    batch = pipeline.batch
    timing = Timing(batch.schedule, batch.time_zone, batch.concurrency_policy, batch.suspend)
    return _scheduled(owner, pipeline, batch_name(owner), batch_job(pipeline), timing, [])


def maintenance_timing(pipeline: MedallionPipelineSpec) -> Timing:
    """The maintenance's own timing: suspending the batch leaves compaction and snapshot expiry
    running; in the batch's time zone unless it names its own; never two runs at once (two
    compactions of one table would conflict at commit)."""
    maintenance = pipeline.maintenance
    return Timing(
        schedule=maintenance.schedule,
        time_zone=maintenance.time_zone or pipeline.batch.time_zone,
        concurrency_policy=ConcurrencyPolicy.FORBID,
        suspend=maintenance.suspend,
    )


def build_maintenance_schedule(owner: Owner, pipeline: MedallionPipelineSpec) -> dict[str, Any]:
    """The daily compaction and snapshot expiry of the pipeline's tables."""
    maintenance = pipeline.maintenance
    arguments = [
        "--target-file-size-mb",
        str(maintenance.target_file_size_mb),
        "--snapshot-retention",
        format_duration(maintenance.snapshot_retention),
        *pipeline.maintained_tables(),
    ]
    return _scheduled(
        owner,
        pipeline,
        maintenance_name(owner),
        SparkJob.MAINTENANCE,
        maintenance_timing(pipeline),
        arguments,
    )


def build_metrics_service(owner: Owner, pipeline: MedallionPipelineSpec) -> dict[str, Any]:
    """The Service in front of the streaming driver's /metrics."""
    driver = {"sparkoperator.k8s.io/app-name": stream_name(owner), "spark-role": "driver"}
    port = pipeline.spark.metrics_port
    return cluster_ip_service(
        owner, metrics_service_name(owner), (SparkJob.STREAM.value, APP), driver,
        ("metrics", port, port),
    )  # fmt: skip


def build_medallion_pipeline_children(
    owner: Owner, pipeline: MedallionPipelineSpec
) -> list[dict[str, Any]]:
    """Every child of a MedallionPipeline, in apply order (the spec ConfigMap first, claims
    before the applications that mount them)."""
    stream = []
    if pipeline.flow is PipelineFlow.MARKET:
        stream = [build_stream_application(owner, pipeline), build_metrics_service(owner, pipeline)]
        if pipeline.detection.enabled:
            stream.append(build_detection_application(owner, pipeline))
    return [
        build_spec_config_map(owner, pipeline),
        *build_checkpoints_claims(owner, pipeline),
        *stream,
        build_batch_schedule(owner, pipeline),
        build_maintenance_schedule(owner, pipeline),
    ]


def possible_children(owner: Owner) -> list[tuple[str, str, str]]:
    """(apiVersion, kind, name) of every child a pipeline of any flow can have, in delete order."""
    return [
        (SPARK_API_VERSION, "ScheduledSparkApplication", maintenance_name(owner)),
        (SPARK_API_VERSION, "ScheduledSparkApplication", batch_name(owner)),
        (SPARK_API_VERSION, "SparkApplication", detection_name(owner)),
        (SPARK_API_VERSION, "SparkApplication", stream_name(owner)),
        ("v1", "PersistentVolumeClaim", checkpoints_name(owner, SparkJob.ALERT_DETECTION)),
        ("v1", "PersistentVolumeClaim", checkpoints_name(owner, SparkJob.STREAM)),
        ("v1", "Service", metrics_service_name(owner)),
        ("v1", "ConfigMap", spec_config_map_name(owner)),
    ]
