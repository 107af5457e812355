"""``python -m finlake_alerting``: the alert service, as the operator's alerting Deployments run it.

Everything comes from ``FINLAKE_*`` (FINLAKE_ALERTING__RULE_PATHS, __HOST, __PORT, ...), as with
``finlake alerts serve`` without options.
"""

from __future__ import annotations

from finlake_alerting.cli import serve


def main() -> None:
    serve(rules=None, port=None)


if __name__ == "__main__":
    main()
