"""``python -m finlake_ingestion``: the long-running service, configured by FINLAKE_* env only."""

from __future__ import annotations

import logging
import sys

from finlake.errors import FinlakeError
from finlake_ingestion.config import get_settings
from finlake_ingestion.logs import configure_logging
from finlake_ingestion.service import configured_source, execute

log = logging.getLogger("finlake_ingestion")


def main() -> int:
    """Run the configured source until SIGTERM, also once a replay file is done (exiting would
    have the container restarted to publish it again); exit 1 on a configuration or delivery
    error."""
    settings = get_settings()
    configure_logging(settings.ingestion.log_level)
    try:
        report = execute(settings, configured_source(settings), serve=True, hold=True)
    except FinlakeError as error:
        log.error("ingestion failed", extra={"error": str(error)})
        return 1
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
