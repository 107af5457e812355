"""Market-data sources behind one interface: yahoo, replay and simulate."""

from finlake_ingestion.sources.base import Batch, Headers, TickSource

__all__ = ["Batch", "Headers", "TickSource"]
