"""Shared console objects for the CLI."""

from rich.console import Console

console = Console()
errors = Console(stderr=True)
