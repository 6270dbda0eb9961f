"""observability/prometheus: the configuration and the rules pass promtool, and the rules their unit tests."""

from __future__ import annotations

import subprocess

from tests.conftest import REPO
from tests.promtool import promtool_path

PROMETHEUS_DIR = REPO / "observability" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool_path(), *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=60)


def test_config_and_the_rules_it_loads_are_valid():
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout  # the relative rule_files glob finds the rules


def test_rules_are_valid():
    rule_files = sorted(str(p.relative_to(PROMETHEUS_DIR)) for p in (PROMETHEUS_DIR / "rules").glob("*.yml"))
    assert rule_files
    result = promtool("check", "rules", *rule_files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass():
    tests = sorted(str(p.relative_to(PROMETHEUS_DIR)) for p in (PROMETHEUS_DIR / "tests").glob("*.test.yml"))
    assert tests
    result = promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test():
    rules = (PROMETHEUS_DIR / "rules" / "classifier.rules.yml").read_text()
    tested = "".join(p.read_text() for p in (PROMETHEUS_DIR / "tests").glob("*.test.yml"))
    alerts = [line.split(":", 1)[1].strip() for line in rules.splitlines() if line.strip().startswith("- alert:")]
    assert len(alerts) == 7
    assert [a for a in alerts if f"alertname: {a}\n" not in tested] == []
