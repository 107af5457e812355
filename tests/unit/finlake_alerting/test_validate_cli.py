from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli
from tests.unit.finlake.test_alert_rule import RULE


def test_validate_accepts_good_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULE)
    result = run_cli("alerts", "validate", str(path))
    assert result.returncode == 0, result.stderr
    assert "aapl-breakout: price_cross on AAPL, MSFT -> email, slack" in result.stdout
    assert "1 rule(s) valid" in result.stdout


def test_validate_prints_one_line_per_problem_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        RULE.replace("level: 200", "level: -1").replace("cooldown: 1h30m", "cooldown: x")
    )
    result = run_cli("alerts", "validate", str(path), str(tmp_path / "missing.yaml"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3, result.stderr
    assert all(line.startswith("error: ") for line in lines)
    assert "spec.condition.level: Input should be greater than 0" in lines[0]
    assert "Traceback" not in result.stderr
