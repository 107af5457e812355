"""The lake: Iceberg table specs (names, columns, partitions, locations) shared by every engine."""
