"""Operations artefacts (deploy/monitoring): the alert rules pass `promtool check rules`, and the rules
and the Grafana dashboard name only metrics the service really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import cds_service.security.fhir_servers  # noqa: F401  (registers its counter, as the app does)
from cds_service.observability import metrics  # noqa: F401

MONITORING = Path(__file__).resolve().parent.parent / "deploy" / "monitoring"
# Prometheus's own series, not the service's.
PROMETHEUS_SERIES = {"up"}
METRIC = re.compile(r"\b(cds_[a-z_]+|up)\b")


def exported_names() -> set[str]:
    names: set[str] = set()
    for family in REGISTRY.collect():
        for sample in family.samples:
            names.add(sample.name)
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":  # a labelled histogram has no sample before its first use
            names |= {f"{family.name}_{part}" for part in ("bucket", "count", "sum")}
    return names


def referenced(text: str) -> set[str]:
    return set(METRIC.findall(text)) - PROMETHEUS_SERIES


@pytest.mark.slow  # promtool, a subprocess
def test_alert_rules_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (.ci/run installs Debian's prometheus package)")
    result = subprocess.run(
        [promtool, "check", "rules", str(MONITORING / "alerts.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout


@pytest.mark.slow  # promtool, a subprocess
def test_fetch_limit_alert_fires_on_a_refusal_and_clears(tmp_path: Path) -> None:
    """`promtool test rules`: CdsFetchLimitExceeded fires, per source and cause, within minutes of a
    response abandoned at a cap, and clears once 15 minutes pass without one."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (.ci/run installs Debian's prometheus package)")
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    alert = next(
        r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "CdsFetchLimitExceeded"
    )
    labels = {"source": "fhir", "cause": "too-many-resources"}
    series = 'cds_fetch_limit_exceeded_total{source="fhir",cause="too-many-resources"}'
    cases = {
        "rule_files": [str(MONITORING / "alerts.yaml")],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": series, "values": "0 0 1x40"}],
                "alert_rule_test": [
                    {"eval_time": "1m", "alertname": "CdsFetchLimitExceeded", "exp_alerts": []},
                    {
                        "eval_time": "3m",
                        "alertname": "CdsFetchLimitExceeded",
                        "exp_alerts": [
                            {
                                "exp_labels": {**alert["labels"], **labels},
                                "exp_annotations": alert["annotations"],
                            }
                        ],
                    },
                    {"eval_time": "30m", "alertname": "CdsFetchLimitExceeded", "exp_alerts": []},
                ],
            }
        ],
    }
    test_file = tmp_path / "fetch-limit-tests.yaml"
    test_file.write_text(yaml.safe_dump(cases))
    result = subprocess.run(
        [promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_and_dashboard_name_only_exported_metrics() -> None:
    exported = exported_names()
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    exprs = " ".join(r["expr"] for g in rules["groups"] for r in g["rules"])
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    targets = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for name in referenced(exprs) | referenced(targets):
        assert name in exported, f"{name} is not a metric the service exports"
    assert len(referenced(exprs)) >= 6 and len(referenced(targets)) >= 10
