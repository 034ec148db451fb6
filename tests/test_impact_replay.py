"""Impact replay before a knowledge change (SPEC §6): `cds-service knowledge diff OLD NEW` over any
folder of cases, fixtures or plain CDS Hooks requests as an EHR sent them, lists every outcome that
changes, and says so when nothing in the folder is touched by the change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cds_service.config import HOOKS_DIR
from cds_tools.cli import changed_files, cli
from cds_tools.fixtures import FIXTURES_DIR
from tests.ops_helpers import NOW, _iso, hook_request
from tests.support.cli import CliRunner

RULES = Path("pdph_imaging") / "rules.yaml"


def _hooks(tmp_path: Path, name: str, old: str | None = None, new: str | None = None) -> Path:
    """A copy of hooks/, with one replacement in rules.yaml."""
    folder = tmp_path / name
    shutil.copytree(HOOKS_DIR, folder)
    if old is not None and new is not None:
        rules = folder / RULES
        text = rules.read_text(encoding="utf-8")
        assert text.count(old) == 1
        rules.write_text(text.replace(old, new), encoding="utf-8")
    return folder


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    """Two requests an integrator exported (36 h and 96 h after a lumbar puncture, as sent: real
    instants) and one fixture."""
    folder = tmp_path / "cases"
    folder.mkdir()
    (folder / "exported-36h.json").write_text(json.dumps(hook_request("exp-1")))
    (folder / "exported-96h.json").write_text(
        json.dumps(hook_request("exp-2", hours_since_puncture=96, hook="order-sign"))
    )
    shutil.copy(FIXTURES_DIR / "red-flags-fever-ct-head.json", folder)
    return folder


def _diff(old: Path, new: Path, folder: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(
        cli,
        ["knowledge", "diff", str(old), str(new), "--requests", str(folder), "--now", _iso(NOW)],
    )
    return result.exit_code, result.output.splitlines()


def test_a_change_lists_every_outcome_it_changes(tmp_path: Path, cases: Path) -> None:
    old = _hooks(tmp_path, "old")
    # The acute window shortened to 24 hours: the 36-hour request is no longer acute.
    new = _hooks(tmp_path, "new", "acute_window_hours: 72", "acute_window_hours: 24")
    code, lines = _diff(old, new, cases)
    assert code == 1
    assert lines[0] == "exported-36h"
    assert lines[1].startswith("  before: pdph-acute ")
    assert lines[2].startswith("  after:  ") and "pdph-acute " not in lines[2]
    assert lines[-1] == "3 cases: 1 outcome(s) change"


def test_a_note_when_no_case_is_touched(tmp_path: Path, cases: Path) -> None:
    old = _hooks(tmp_path, "old")
    # A threshold no case of the folder is near: the 30-day look-back made 45 days.
    new = _hooks(tmp_path, "new", "lookback_days: 30 ", "lookback_days: 45 ")
    code, lines = _diff(old, new, cases)
    assert code == 0
    assert lines[0] == "3 cases: 0 outcome(s) change"
    assert lines[1].startswith(f"Note: {new} differs from {old} in pdph_imaging/rules.yaml")
    assert "no case in" in lines[1] and "add a fixture or an exported request" in lines[1]
    same_code, same = _diff(old, _hooks(tmp_path, "same"), cases)
    assert same_code == 0 and same == ["3 cases: 0 outcome(s) change"]
    assert changed_files(old, new) == ["pdph_imaging/rules.yaml"]


def test_a_file_that_is_neither_is_one_line(tmp_path: Path, cases: Path) -> None:
    old = _hooks(tmp_path, "old")
    (cases / "notes.json").write_text('{"patient": "not a request"}')
    code, lines = _diff(old, old, cases)
    assert code == 2 and len(lines) == 1
    assert "notes.json: neither a fixture" in lines[0]
    (cases / "notes.json").write_text(json.dumps(hook_request("x", hook="patient-view")))
    code, lines = _diff(old, old, cases)
    assert code == 2 and "no service answers the hook 'patient-view'" in lines[0]
