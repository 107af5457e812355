"""finlake query API and dashboard over the gold tables."""
