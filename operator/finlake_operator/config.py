"""Settings of the operator (env ``FINLAKE_OPERATOR__*``; the CLI's options override them)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from finlake.config import FinlakeSettings


class OperatorOptions(BaseModel):
    """How the operator watches, resyncs and reports."""

    namespaces: list[str] = Field(
        default_factory=list, description="Namespaces to watch; empty: the whole cluster."
    )
    resync_interval_s: float = Field(
        default=60.0, gt=0, description="How often each resource is re-read to correct drift."
    )
    peering: str = Field(default="finlake", description="Peering name (one active operator).")
    standalone: bool = Field(default=False, description="Run without peering.")
    priority: int | None = Field(
        default=None,
        description="Peering priority, the highest is active; default: random per process "
        "(peers of equal priority would all pause).",
    )
    peering_lifetime_s: int = Field(
        default=60, ge=1, description="A peer silent this long is dead; a standby takes over."
    )
    liveness_host: str = Field(default="0.0.0.0", description="Listen host of /healthz.")
    liveness_port: int = Field(default=8080, ge=1, le=65535, description="Port of /healthz.")
    metrics_port: int = Field(default=9111, ge=0, le=65535, description="/metrics; 0 = off.")
    alerting_image: str = Field(
        default="ghcr.io/finlake/finlake-alerting:0.1.0",
        description="Image of the alerting Deployments.",
    )
    producer_image: str | None = Field(
        default=None, description="Image of a MarketFeed's producer that names none."
    )
    spark_image: str | None = Field(
        default=None, description="Image of a MedallionPipeline's Spark jobs that names none."
    )
    image_pull_secrets: list[str] = Field(
        default_factory=list,
        description="Secrets (names, in each watched namespace) the pods the operator creates "
        "pull their images with.",
    )
    registry_password_secret: str | None = Field(
        default=None,
        description="Secret with the schema registry's basic-auth password, for the producers, "
        "alert services and Spark drivers the operator creates (FINLAKE_REGISTRY__"
        "BASIC_AUTH_PASSWORD; chart: credentials.registryPassword).",
    )
    registry_password_key: str = Field(default="password", description="Key of that Secret.")
    feature_store_password_secret: str | None = Field(
        default=None,
        description="Secret with the feature store PostgreSQL's password, for the transactions "
        "batch's Spark drivers (FINLAKE_ML__POSTGRES_PASSWORD; chart: "
        "credentials.featureStorePassword).",
    )
    feature_store_password_key: str = Field(default="password", description="Key of that Secret.")
    dashboard_api_key_secret: str | None = Field(
        default=None,
        description="Secret with the query API key every rule's alert service posts to the "
        "dashboard with (a rule's dashboard channel may name its own secretRef instead).",
    )
    dashboard_api_key_key: str = Field(default="api-key", description="Key of that Secret.")
    metrics_timeout_s: float = Field(
        default=2.0, gt=0, description="Timeout reading a pipeline's metrics."
    )


class OperatorSettings(FinlakeSettings):
    """Everything the operator reads."""

    operator: OperatorOptions = Field(default_factory=OperatorOptions)
