"""The Prometheus alert rules in deploy/monitoring/alerts.yaml, checked by the real promtool
(Debian package prometheus; .ci/run installs it when run as root): the rules load, and the
unit tests in alerts.test.yaml make each alert fire on a synthetic series and stay silent on
the others. A rule whose threshold is broken makes promtool's tests fail."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.server import ROOT

RULES = ROOT / "deploy" / "monitoring" / "alerts.yaml"
RULE_TESTS = ROOT / "deploy" / "monitoring" / "alerts.test.yaml"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

pytestmark = pytest.mark.skipif(
    not Path(PROMTOOL).exists(),
    reason="promtool not found (Debian package prometheus; .ci/run installs it as root)",
)


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def alert_names() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"]}


def test_rules_load() -> None:
    result = promtool("check", "rules", str(RULES), cwd=RULES.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in result.stdout


def test_every_alert_fires_and_stays_silent_in_promtools_unit_tests() -> None:
    result = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    cases = [
        case
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
    ]
    fired = {case["alertname"] for case in cases if case["exp_alerts"]}
    assert fired == alert_names(), "every alert needs a case where it fires"
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        # Each test feeds at least one series that must not trip the alert: promtool fails
        # when an alert fires that exp_alerts does not list.
        expected = sum(len(case["exp_alerts"]) for case in test["alert_rule_test"])
        assert len(test["input_series"]) > expected, test["name"]


def test_a_broken_threshold_fails_the_unit_tests(tmp_path: Path) -> None:
    """The unit tests can fail: an accuracy threshold that flags every version trips them."""
    rules = RULES.read_text().replace(
        "model_bundle_live_accuracy < 0.8", "model_bundle_live_accuracy < 0.99"
    )
    assert rules != RULES.read_text()
    (tmp_path / RULES.name).write_text(rules)
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0
    assert "ModelBundleLiveAccuracyLow" in result.stdout + result.stderr
