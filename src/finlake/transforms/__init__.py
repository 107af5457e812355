"""Pure DataFrame -> DataFrame transforms of the medallion layers (pyspark lives here)."""
