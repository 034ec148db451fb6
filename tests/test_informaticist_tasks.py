"""An informaticist's tasks need YAML only (issue 20): each test edits a copy of hooks/ and shows the
service applying the change, with no Python touched. (Adding a red flag and a card sentence:
tests/test_knowledge.py, through the HTTP API.)"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from cds_service.config import HOOKS_DIR
from tests.support.builders import (
    CPT,
    concept,
    evaluate_now,
    headache,
    hook_request,
    lumbar_puncture,
    service_request,
)
from tests.support.spec_matrix import MATRIX, MBA, UNA


@pytest.fixture
def hooks(tmp_path: Path) -> Path:
    target = tmp_path / "hooks"
    shutil.copytree(HOOKS_DIR, target)
    return target


def edit(path: Path, change: Any) -> None:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)  # libyaml: 10x
    change(data)
    text = yaml.dump(data, Dumper=yaml.CSafeDumper, allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")


def card_for(order: dict[str, Any], hooks_dir: Path) -> dict[str, Any]:
    request = hook_request([order], [lumbar_puncture(30), headache()], hook="order-select")
    [card] = evaluate_now(request, hooks_dir=hooks_dir).response.to_json_dict()["cards"]
    return card


def test_a_study_type_matched_by_its_text(hooks: Path) -> None:
    """'CT perfusion head' becomes a study type of its own: its words, its rule, its row."""
    order = service_request("sr-1", concept(text="CT PERFUSION HEAD"))
    before = card_for(order, hooks)
    assert before["extension"]["pdph-imaging.study-type"] == "ct-head-without"

    def add_study(d: dict[str, Any]) -> None:
        d["studies"]["ct-perfusion-head"] = {
            "name": "CT perfusion head",
            "rating_row": "other-head-spine",
            "rrl": "☢☢☢ (1–10 mSv)",
        }
        d["text"]["modality"]["perfusion"] = ["perfusion"]
        rule = {
            "all": ["modality.ct", "modality.perfusion", "region.head"],
            "study": "ct-perfusion-head",
        }
        d["classify"].insert(0, rule)

    edit(hooks / "pdph_imaging" / "imaging.yaml", add_study)
    after = card_for(order, hooks)
    assert after["extension"]["pdph-imaging.study-type"] == "ct-perfusion-head"
    assert after["summary"].startswith("CT PERFUSION HEAD")


def test_one_rating_cell_changed(hooks: Path) -> None:
    """The acute column's MRI spine cell from UNA to MBA (J): the card and the PAMA rating follow;
    the one matrix table of the tests names the cell that changed."""
    order = service_request("sr-1", concept(CPT, "72148", "MRI lumbar spine without contrast"))
    assert (
        card_for(order, hooks)["extension"]["pdph-imaging.rating"]
        == MATRIX["mri-spine-lumbar"][0]
        == UNA
    )

    def change(d: dict[str, Any]) -> None:
        d["ratings"]["pdph-acute"]["mri-spine"] = {"rating": "MBA", "source": "J"}

    edit(hooks / "pdph_imaging" / "rules.yaml", change)
    request = hook_request([order], [lumbar_puncture(30), headache()], hook="order-select")
    evaluation = evaluate_now(request, hooks_dir=hooks)
    assert evaluation.decisions[0].rating.value.value == MBA
    [action] = evaluation.response.to_json_dict()["systemActions"]
    pama = action["resource"]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
    assert pama == "appropriate"


def test_a_new_scenario_with_its_precedence_and_card_texts(hooks: Path) -> None:
    """A site adds a scenario in YAML alone: an epidural blood patch whose puncture cannot be placed
    in time, with a headache, gets an information card instead of silence."""
    folder = hooks / "pdph_imaging"

    def add(d: dict[str, Any]) -> None:
        code = "blood-patch-puncture-undated"
        uncertain = next(
            i for i, r in enumerate(d["precedence"]) if r["when"] == ["uncertain-puncture"]
        )
        d["precedence"].insert(
            uncertain, {"when": ["blood-patch", "uncertain-puncture"], "then": code}
        )
        d["ratings"][code] = {row: {"rating": "NR"} for row in d["ratings"]["pdph-acute"]}
        d["scenarios"][code] = {
            "title": "Headache after a blood patch, puncture time unknown",
            "why": "{evidence} after an epidural blood patch; the puncture's time is not recorded.",
            "what": "Record when the puncture was done; {ordered} is not rated meanwhile.",
            "indicator": "info",
            "summary": "Blood patch recorded, puncture time unknown: {ordered} cannot be rated.",
            "advice": "Without the puncture's time, acute and persistent cannot be told apart.",
            "suggestions": [],
            "override_reasons": [],
        }

    edit(folder / "rules.yaml", add)
    undated = {
        "resourceType": "Procedure",
        "status": "completed",
        "subject": {"reference": "Patient/pat-1"},
        "code": concept(CPT, "62270", "Lumbar puncture"),
    }
    patch = {
        **undated,
        "code": concept(CPT, "62273", "Epidural blood patch"),
        "performedDateTime": lumbar_puncture(20)["performedDateTime"],
    }
    order = service_request("sr-1", concept(CPT, "70553", "MRI brain without and with contrast"))
    request = hook_request([order], [undated, patch, headache(10)], hook="order-select")
    [card] = evaluate_now(request, hooks_dir=hooks).response.to_json_dict()["cards"]
    assert card["source"]["topic"]["code"] == "blood-patch-puncture-undated"
    assert card["summary"].startswith("Blood patch recorded, puncture time unknown")
    assert card["links"][0]["url"].endswith("/explain/blood-patch-puncture-undated")


def test_a_procedure_with_its_role(hooks: Path) -> None:
    """A site adds a kind of procedure the shipped knowledge does not know, with what it is to the
    engine (`role`): its Spanish-language catalogue's lumbar puncture is a dural puncture, so a
    headache 30 h after one is the acute scenario, not silence."""
    puncion = {**lumbar_puncture(30), "code": {"text": "Punción lumbar diagnóstica"}}
    order = service_request("sr-1", concept(CPT, "70553", "MRI brain without and with contrast"))
    request = hook_request([order], [puncion, headache(10)], hook="order-select")
    assert evaluate_now(request, hooks_dir=hooks).response.to_json_dict()["cards"] == []

    def add(d: dict[str, Any]) -> None:
        d["procedures"]["puncion-lumbar"] = {
            "display": "punción lumbar",
            "role": "dural-puncture",
            "text": [r"\bpunci[oó]n (lumbar|dural)"],
        }

    edit(hooks / "pdph_imaging" / "valuesets.yaml", add)
    [card] = evaluate_now(request, hooks_dir=hooks).response.to_json_dict()["cards"]
    assert card["source"]["topic"]["code"] == "pdph-acute"
    assert "Punción lumbar diagnóstica" in card["detail"]


def test_a_finding_group_decides_a_precedence_line(hooks: Path) -> None:
    """A site adds a finding in a group of its own and a precedence line that asks for it
    ("finding in <group>"): an immunosuppressed patient's headache after a puncture is imaged now."""
    folder = hooks / "pdph_imaging"
    order = service_request("sr-1", concept(CPT, "72148", "MRI lumbar spine without contrast"))
    immunosuppressed = {
        **headache(10),
        "id": "cond-immuno",
        "code": {"text": "Immunosuppressed (on tacrolimus)"},
    }
    request = hook_request(
        [order], [lumbar_puncture(30), headache(10), immunosuppressed], hook="order-select"
    )
    [before] = evaluate_now(request, hooks_dir=hooks).response.to_json_dict()["cards"]
    assert before["source"]["topic"]["code"] == "pdph-acute"

    def add_finding(d: dict[str, Any]) -> None:
        d["findings"]["immunosuppressed"] = {
            "display": "immunosuppression",
            "text": [r"\bimmunosuppress(ed|ion)\b"],
        }

    def add_rule(d: dict[str, Any]) -> None:
        d["finding_groups"]["immunocompromised"] = ["immunosuppressed"]
        d["finding_groups"]["durable"].append("immunosuppressed")
        d["precedence"].insert(
            0,
            {
                "when": ["headache-evidence", "finding in immunocompromised", "not child"],
                "then": "pdph-acute-red-flags",
            },
        )

    edit(folder / "valuesets.yaml", add_finding)
    edit(folder / "rules.yaml", add_rule)
    [card] = evaluate_now(request, hooks_dir=hooks).response.to_json_dict()["cards"]
    assert card["source"]["topic"]["code"] == "pdph-acute-red-flags"

    def misspelt(d: dict[str, Any]) -> None:
        d["precedence"][0]["when"][1] = "finding in immunocompromise"

    edit(folder / "rules.yaml", misspelt)
    with pytest.raises(ValueError, match="unknown condition 'finding in immunocompromise'"):
        evaluate_now(request, hooks_dir=hooks)
