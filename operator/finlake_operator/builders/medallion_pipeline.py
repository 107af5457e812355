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

from finlake.contracts.medallion_pipeline import MedallionPipelineSpec, PipelineFlow, SparkJob
from finlake.contracts.pipeline_jobs import ConcurrencyPolicy
from finlake.contracts.resources import format_duration
from finlake_operator.builders.alert_rule import RULES_CONFIG_MAP, RULES_MOUNT
from finlake_operator.builders.common import Owner, build_state_claim, cluster_ip_service, metadata
from finlake_operator.builders.medallion_application import (
    APP,
    SPARK_API_VERSION,
    SPEC_FILE,
    application_spec,
    batch_name,
    checkpoints_name,
    detection_name,
    maintenance_name,
    metrics_service_name,
    pipeline_document,
    spec_config_map_name,
    stream_name,
)

HISTORY_LIMIT = 3


@dataclass(frozen=True)
class Timing:
    """When a ScheduledSparkApplication runs: cron, time zone, overlap policy, suspended or not."""

    schedule: str
    time_zone: str
    concurrency_policy: ConcurrencyPolicy
    suspend: bool


def build_spec_config_map(owner: Owner, pipeline: MedallionPipelineSpec) -> dict[str, Any]:
    """The ConfigMap mounted into every driver of the pipeline."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(owner, spec_config_map_name(owner), "pipeline", APP),
        "data": {SPEC_FILE: pipeline_document(owner, pipeline)},
    }


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
    spec = application_spec(owner, pipeline, SparkJob.STREAM, [])
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
    spec = application_spec(owner, pipeline, SparkJob.ALERT_DETECTION, arguments)
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
    template = application_spec(owner, pipeline, job, arguments)
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
