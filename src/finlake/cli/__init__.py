"""The ``finlake`` command line (Typer + Rich)."""
