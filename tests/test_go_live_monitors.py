"""The go-live malfunction monitors (deploy/monitoring/go-live-alerts.yaml): `promtool check rules`, and
`promtool test rules` with series (a scenario that stops firing, one five times and one a tenth as
frequent as in the same hours of the previous two weeks, a rise of unclassified imaging orders, a new
knowledge version); every alert has a runbook line, and rules and dashboard name only metrics the
service exports."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from cds_service.golive import metrics as go_live_metrics  # noqa: F401  (registers its metrics)
from tests.test_monitoring import MONITORING, exported_names, referenced

RULES = MONITORING / "go-live-alerts.yaml"
TESTS = MONITORING / "go-live-alerts.test.yaml"
ALERTS = {
    "CdsScenarioStoppedFiring",
    "CdsScenarioFiringChanged",
    "CdsUnclassifiedImagingOrdersRising",
    "CdsUninterpretedWordsRising",
    "CdsKnowledgeVersionChanged",
}


def _unit_tests_in(folder: Path) -> subprocess.CompletedProcess[str]:
    """`promtool test rules` of the alert rules' unit tests, as they stand in `folder`."""
    return subprocess.run(
        [_promtool(), "test", "rules", TESTS.name],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
    )


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (.ci/run installs Debian's prometheus package)")
    return promtool


def _rules() -> list[dict[str, str]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


@pytest.mark.slow  # promtool, a subprocess
def test_the_rules_pass_promtool_check() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


@pytest.mark.slow  # promtool, a subprocess
def test_the_rules_pass_their_unit_tests_with_series() -> None:
    result = _unit_tests_in(MONITORING)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    tested = {
        case["alertname"]
        for test in yaml.safe_load(TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert tested == ALERTS  # every alert is tested where it must fire...
    quiet = {
        case["alertname"]
        for test in yaml.safe_load(TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if not case.get("exp_alerts")
    }
    assert quiet == ALERTS  # ...and where it must stay silent


@pytest.mark.slow  # promtool, a subprocess
def test_a_broken_rule_fails_its_unit_test(tmp_path: Path) -> None:
    """The unit tests bite: with the factor raised to 10, the five-fold change goes unnoticed."""
    broken = RULES.read_text().replace("expr: vector(3)", "expr: vector(10)")
    (tmp_path / RULES.name).write_text(broken)
    shutil.copy(TESTS, tmp_path / TESTS.name)
    result = _unit_tests_in(tmp_path)
    assert result.returncode != 0 and "CdsScenarioFiringChanged" in result.stdout + result.stderr


def test_every_alert_has_a_runbook_line_and_a_severity() -> None:
    alerts = [r for r in _rules() if "alert" in r]
    assert {a["alert"] for a in alerts} == ALERTS
    for alert in alerts:
        runbook = alert["annotations"]["runbook"]
        assert runbook.startswith("docs/go-live.md#"), alert["alert"]
        anchor = runbook.split("#", 1)[1].split(":", 1)[0]
        heading = anchor.replace("-", " ")
        go_live = (MONITORING.parent.parent / "docs" / "go-live.md").read_text().lower()
        assert f"## {heading}" in go_live, f"docs/go-live.md has no section for #{anchor}"
        assert alert["labels"]["severity"] in {"ticket", "info"}


def test_rules_and_dashboard_name_only_exported_metrics() -> None:
    exported = exported_names()
    exprs = " ".join(r["expr"] for r in _rules())
    names = referenced(exprs)
    assert names >= {
        "cds_scenario_fired_total",
        "cds_unclassified_imaging_orders_total",
        "cds_uninterpreted_words_total",
        "cds_knowledge_info",
    }
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    targets = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for name in names | referenced(targets):
        assert name in exported, f"{name} is not a metric the service exports"
    for name in (
        "cds_scenario_fired_total",
        "cds_silent_mode",
        "cds_knowledge_info",
        "cds_unclassified_imaging_orders_total",
        "cds_uninterpreted_words_total",
    ):
        assert name in targets, f"the dashboard has no panel for {name}"
