"""Fraud features (Feast), training and the model registry (MLflow), predictions.

Needs the optional extra ``finlake[ml]``; nothing outside this package imports it eagerly.

Feast is imported here, before any module of the package runs, so that it cannot change how the
rest of the process counts its Prometheus metrics: ``feast.metrics`` (imported by ``import feast``)
sets ``PROMETHEUS_MULTIPROC_DIR`` and ``PROMETHEUS_MULTIPROCESS_DIR`` to a temporary folder of its
own, for its Gunicorn feature server, which finlake never runs. prometheus_client reads them when
it is first imported, and from then on keeps every value in per-process files instead of memory:
all metrics of the process with one name and labels share one value, whatever registry they are
in (two services' or two tests' metrics add up), and removing or clearing labels warns.
"""

from __future__ import annotations

import os

# Before Feast: prometheus_client picks its value storage at import, from the environment as the
# user set it (or not), and keeps it.
import prometheus_client.values  # noqa: F401

# prometheus_client's switch to multiprocess mode, and its older lower-case spelling.
_PROMETHEUS_ENV = (
    "PROMETHEUS_MULTIPROC_DIR",
    "PROMETHEUS_MULTIPROCESS_DIR",
    "prometheus_multiproc_dir",
)


def _import_feast() -> None:
    """Import Feast leaving the environment, and so prometheus_client's mode, as they were."""
    before = {name: os.environ.get(name) for name in _PROMETHEUS_ENV}
    try:
        import feast  # noqa: F401
    except ImportError:
        pass  # no ml extra: the modules that need Feast fail on their own import of it
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_import_feast()
