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


def test_patterns_print_as_written_and_odd_documents_are_one_line(tmp_path: Path) -> None:
    # Rule text holds brackets ([A-Z]+, [/x]) that rich would read as markup and crash on.
    selector = tmp_path / "selector.yaml"
    selector.write_text(RULE.replace("symbols: [AAPL, MSFT]", 'selector: {pattern: "A[/a]"}'))
    result = run_cli("alerts", "validate", str(selector))
    assert result.returncode == 0, result.stderr
    assert "price_cross on /A[/a]/ -> email, slack" in result.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        RULE.replace("metadata: {name: aapl-breakout, labels: {team: desk}}", "metadata: foo")
        + "---\n"
        + RULE.replace("cooldown: 1h30m", "cooldown: 9999999999d")
        + "---\n"
        + RULE.replace("symbols: [AAPL, MSFT]", 'symbols: ["[/x]"]')
    )
    result = run_cli("alerts", "validate", str(broken))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3, result.stderr
    assert "AlertRule/?: metadata" in lines[0]
    assert "'9999999999d' is longer than 3660d" in lines[1]
    assert "[/x]" in lines[2]


def test_a_folder_is_its_yaml_files(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yaml").write_text(RULE)
    (rules / "b.yml").write_text(RULE.replace("aapl-breakout", "msft-breakout"))
    (rules / "notes.txt").write_text("not a rule")
    (tmp_path / "empty").mkdir()
    result = run_cli("alerts", "validate", str(rules))
    assert result.returncode == 0, result.stderr
    assert "2 rule(s) valid" in result.stdout
    empty = run_cli("alerts", "validate", str(tmp_path / "empty"))
    assert empty.returncode == 1
    assert empty.stderr.strip() == f"error: {tmp_path / 'empty'}: no .yaml or .yml files"


def test_patterns_and_documents_python_cannot_hold_are_one_line(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    huge.write_text(RULE.replace("symbols: [AAPL, MSFT]", 'selector: {pattern: "A{4294967296}"}'))
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(RULE.replace("fire: once_per_bar_close", "fire: once_per_bar\n  bar: 0.0004"))
    result = run_cli("alerts", "validate", str(huge), str(deep), str(tiny))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3, result.stderr
    assert "spec.selector.pattern: 'A{4294967296}' is not a regular expression" in lines[0]
    assert lines[1] == f"error: {deep}: not valid YAML: nested too deeply"
    assert "spec.bar: 0.0004 s is not a whole number of milliseconds" in lines[2]
