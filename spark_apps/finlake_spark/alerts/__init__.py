"""Alert detection: rule loading, per-symbol evaluation, the Spark stateful processor and sink."""
