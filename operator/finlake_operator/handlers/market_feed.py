"""MarketFeed: resolve the symbols, apply the producer's children, report."""

from __future__ import annotations

from typing import Any

from finlake.contracts.market_feed import (
    TICKER,
    FeedSource,
    MarketFeedSpec,
    SimulateSpec,
    parse_symbol_list,
)
from finlake_operator.builders.common import (
    Owner,
    PlatformDefaults,
    with_pull_secrets,
    with_registry_password,
)
from finlake_operator.builders.market_feed import build_market_feed_children, producer_state_name
from finlake_operator.handlers.medallion_pipeline import require_platform_secrets
from finlake_operator.kube import Kube, ObjectRef
from finlake_operator.reconcile import Degradation, Plan
from finlake_operator.status import Reason

KIND = "MarketFeed"
PLURAL = "marketfeeds"


def resolve_symbols(owner: Owner, feed: MarketFeedSpec, kube: Kube) -> tuple[str, ...]:
    """The tickers the feed polls: inline, or read (and checked) from the referenced ConfigMap."""
    import re

    if feed.symbols_from is None:
        return tuple(feed.symbols) if feed.source is FeedSource.YAHOO and feed.symbols else ()
    ref = ObjectRef("v1", "ConfigMap", owner.namespace, feed.symbols_from.name)
    config_map = kube.get(ref)
    if config_map is None:
        raise Degradation(
            Reason.CONFIG_MAP_NOT_FOUND,
            f"spec.symbolsFrom.name: ConfigMap {ref.name} not found in {owner.namespace}",
        )
    text = (config_map.get("data") or {}).get(feed.symbols_from.key)
    if text is None:
        raise Degradation(
            Reason.CONFIG_MAP_KEY_NOT_FOUND,
            f"spec.symbolsFrom.key: ConfigMap {ref.name} has no key {feed.symbols_from.key}",
        )
    symbols = parse_symbol_list(text)
    bad = [s for s in symbols if not re.fullmatch(TICKER, s)]
    if bad or not symbols:
        problem = f"not tickers: {', '.join(bad[:5])}" if bad else "no tickers"
        raise Degradation(
            Reason.INVALID_SPEC,
            f"spec.symbolsFrom: ConfigMap {ref.name} key {feed.symbols_from.key}: {problem}",
        )
    return symbols


def plan_market_feed(
    owner: Owner, feed: MarketFeedSpec, kube: Kube, defaults: PlatformDefaults | None = None
) -> Plan:
    """The producer's children and the symbol count (``defaults``: the chart's producer image
    for a feed naming none, image pull Secrets)."""
    defaults = defaults or PlatformDefaults()
    require_platform_secrets(owner, kube, defaults)
    producer = feed.producer
    if defaults.producer_image and "image" not in producer.model_fields_set:
        producer = producer.model_copy(update={"image": defaults.producer_image})
        feed = feed.model_copy(update={"producer": producer})
    symbols = resolve_symbols(owner, feed, kube)
    count: int | None = None
    if feed.source is FeedSource.YAHOO:
        count = len(symbols)
    elif feed.source is FeedSource.SIMULATE:
        count = (feed.simulate or SimulateSpec()).symbols
    summary: dict[str, Any] = {"symbols": count}
    obsolete = [] if feed.producer.persistence is not None else [state_claim_ref(owner)]
    children = build_market_feed_children(owner, feed, symbols)
    with_pull_secrets(children, defaults.image_pull_secrets)
    with_registry_password(children, defaults.registry_password)
    return Plan(children=children, summary=summary, obsolete=obsolete)


def state_claim_ref(owner: Owner) -> ObjectRef:
    """The producer's state claim (deleted when ``producer.persistence`` goes)."""
    return ObjectRef("v1", "PersistentVolumeClaim", owner.namespace, producer_state_name(owner))
