"""Spark glue shared by the Spark applications and tests (needs the ``spark`` extra)."""
