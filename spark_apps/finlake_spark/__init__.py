"""finlake Spark applications: market stream, transactions batch, alert detection, maintenance."""
