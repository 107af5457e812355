"""Pure builders: a spec in, the Kubernetes objects it stands for out (no API calls)."""
