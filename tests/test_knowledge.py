"""Knowledge files are validated at start-up: a broken rule stops the service before it answers."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cds_service.config import HOOKS_DIR
from cds_service.errors import KnowledgeError
from cds_service.knowledge import Knowledge, Scenario, load_knowledge
from cds_service.knowledge.registry import load_services


@pytest.fixture
def hooks_copy(tmp_path: Path) -> Path:
    target = tmp_path / "hooks"
    shutil.copytree(HOOKS_DIR, target)
    return target


def edit(path: Path, change: Callable[[dict], None]) -> None:  # type: ignore[type-arg]
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)  # libyaml: 10x
    change(data)
    path.write_text(yaml.dump(data, Dumper=yaml.CSafeDumper, allow_unicode=True), encoding="utf-8")


def test_shipped_knowledge_loads(knowledge: Knowledge) -> None:
    assert set(knowledge.rules.scenarios) == set(Scenario)
    for concept in knowledge.valuesets.findings.values():
        assert all(code.source for code in concept.codes)


BREAKAGES: list[tuple[str, str, Callable[[dict], None]]] = [  # type: ignore[type-arg]
    ("missing matrix cell", "rules.yaml", lambda d: d["ratings"]["sih"].pop("mri-spine")),
    (
        "unknown rating",
        "rules.yaml",
        lambda d: d["ratings"]["sih"]["mri-spine"].update(rating="OK"),
    ),
    (
        "rating without source",
        "rules.yaml",
        lambda d: d["ratings"]["sih"]["mri-spine"].pop("source"),
    ),
    (
        "cancel where imaging must never be discouraged",
        "rules.yaml",
        lambda d: d["scenarios"]["altered-mental-status"].update(suggestions=[{"kind": "cancel"}]),
    ),
    (
        "undefined override reason",
        "rules.yaml",
        lambda d: d["scenarios"]["sih"]["override_reasons"].append("because"),
    ),
    (
        "unknown orderable",
        "rules.yaml",
        lambda d: d["scenarios"]["pdph-persistent"]["suggestions"][0].update(orderables=["pet-ct"]),
    ),
    (
        "code without source",
        "valuesets.yaml",
        lambda d: d["procedures"]["dural-puncture"]["codes"][0].pop("source"),
    ),
    (
        "invalid regular expression",
        "valuesets.yaml",
        lambda d: d["findings"]["fever"]["text"].append("(unclosed"),
    ),
    (
        "imaging code to an unknown study",
        "imaging.yaml",
        lambda d: d["codes"][0].update(study="pet-ct"),
    ),
    (
        "typo in a field name",
        "imaging.yaml",
        lambda d: d["studies"]["ct-spine"].update(ratng_row="x"),
    ),
    (
        "a temperature that makes no finding (fevers would go unread)",
        "valuesets.yaml",
        lambda d: d["body-temperature"].pop("finding"),
    ),
    (
        "a coma score that makes no finding",
        "valuesets.yaml",
        lambda d: d["glasgow-coma-score"].pop("finding"),
    ),
    (
        "a delivery that makes no finding (postpartum would go unread)",
        "valuesets.yaml",
        lambda d: d["procedures"]["delivery"].pop("finding"),
    ),
]


@pytest.mark.parametrize(
    ("file", "change"), [b[1:] for b in BREAKAGES], ids=[b[0] for b in BREAKAGES]
)
def test_broken_knowledge_is_refused(
    hooks_copy: Path, file: str, change: Callable[[dict], None]
) -> None:  # type: ignore[type-arg]
    edit(hooks_copy / "pdph_imaging" / file, change)
    with pytest.raises(Exception):  # noqa: B017 - pydantic, re or our own ValueError
        load_knowledge(hooks_copy / "pdph_imaging")


def test_service_declarations_are_validated(hooks_copy: Path) -> None:
    edit(
        hooks_copy / "pdph-imaging-order-sign.yaml",
        lambda d: d["prefetch"].update(meds="MedicationRequest?patient={{context.patientId}}"),
    )
    with pytest.raises(ValueError, match="prefetch"):
        load_services(hooks_copy)


def test_a_new_service_is_one_file(hooks_copy: Path) -> None:
    declaration = yaml.safe_load((hooks_copy / "pdph-imaging-order-sign.yaml").read_text())
    declaration["id"] = "pdph-imaging-order-sign-site-b"
    (hooks_copy / "site-b.yaml").write_text(yaml.safe_dump(declaration))
    services = load_services(hooks_copy)
    assert "pdph-imaging-order-sign-site-b" in services
    assert (
        services["pdph-imaging-order-sign-site-b"].knowledge
        is services["pdph-imaging-order-sign"].knowledge
    )


def test_local_codes_extend_a_value_set(hooks_copy: Path) -> None:
    def add_local_code(d: dict[str, Any]) -> None:
        d["systems"]["site"] = "urn:oid:1.2.3.local"
        d["procedures"]["dural-puncture"]["codes"].append(
            {"system": "site", "code": "LP-01", "display": "Local LP", "source": "site catalogue"}
        )

    edit(hooks_copy / "pdph_imaging" / "valuesets.yaml", add_local_code)
    knowledge = load_knowledge(hooks_copy / "pdph_imaging")
    assert knowledge.procedures["dural-puncture"].matches_code("urn:oid:1.2.3.local", "LP-01")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["findings"]["fever"]["codes"][0].update(system="icd10cn"),
            "valuesets.yaml: findings.fever.codes[0]: unknown system 'icd10cn'",
        ),
        (
            lambda d: d["findings"]["fever"]["codes"].append(
                {"system": "icd10cm", "code": "R5O", "source": "typo"}
            ),
            "ICD-10-CM R5O is not in the",
        ),
        (
            lambda d: d["findings"]["meningitis"]["codes"].append(
                {"system": "icd10cm", "code": "G99.99", "source": "typo"}
            ),
            "ICD-10-CM G99.99 is not in the",
        ),
        (
            lambda d: d["findings"].update(
                {"new-flag": {"display": "new flag", "text": ["new flag"]}}
            ),
            "valuesets.yaml: findings.new-flag: in no finding group of rules.yaml",
        ),
        (
            lambda d: d["system_aliases"].update({"urn:oid:9": "cpy"}),
            "system_aliases.urn:oid:9: unknown system 'cpy'",
        ),
    ],
)
def test_code_mistakes_stop_start_up_with_one_line(
    hooks_copy: Path, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    edit(hooks_copy / "pdph_imaging" / "valuesets.yaml", change)
    with pytest.raises(ValueError, match="invalid knowledge") as raised:
        load_knowledge(hooks_copy / "pdph_imaging")
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_an_unknown_precedence_condition_is_refused(hooks_copy: Path) -> None:
    edit(
        hooks_copy / "pdph_imaging" / "rules.yaml",
        lambda d: d["precedence"].insert(0, {"when": ["puncture-in-window"], "then": "silent"}),
    )
    with pytest.raises(
        ValueError, match="precedence\\[0\\]: unknown condition 'puncture-in-window'"
    ):
        load_knowledge(hooks_copy / "pdph_imaging")


def test_icd10cm_codes_name_whole_subtrees(knowledge: Knowledge) -> None:
    seizure = knowledge.findings["seizure"]
    assert seizure.matches_code("http://hl7.org/fhir/sid/icd-10-cm", "G40.409")
    assert seizure.matches_code("urn:oid:2.16.840.1.113883.6.90", "G40409")
    eclampsia = knowledge.findings["eclampsia"]
    assert eclampsia.matches_code("http://hl7.org/fhir/sid/icd-10-cm", "O15.02")
    assert not eclampsia.matches_code("http://hl7.org/fhir/sid/icd-10-cm", "O14.1")


@pytest.mark.anyio
async def test_a_red_flag_and_a_card_sentence_added_in_yaml_only_take_effect(
    hooks_copy: Path, tmp_path: Path
) -> None:
    """Issue 11's proof: an informaticist adds a red flag (a code and a phrase) and a card sentence
    by editing YAML; the HTTP API applies both, with no Python change."""
    from cds_service.api.app import create_app
    from cds_service.config import Settings
    from tests.conftest import NOW
    from tests.support.builders import (
        CPT,
        ICD10CM,
        at,
        concept,
        condition,
        hook_request,
        lumbar_puncture,
        pdph,
        service_request,
    )

    folder = hooks_copy / "pdph_imaging"

    def add_flag(d: dict[str, Any]) -> None:
        d["findings"]["hypertensive-emergency"] = {
            "display": "hypertensive emergency",
            "codes": [
                {
                    "system": "icd10cm",
                    "code": "I16.1",
                    "display": "Hypertensive emergency",
                    "source": "CMS ICD-10-CM 2026",
                }
            ],
            "text": ["hypertensive (emergency|crisis)"],
        }

    def use_flag(d: dict[str, Any]) -> None:
        d["finding_groups"]["red_flags"].append("hypertensive-emergency")
        scenario = d["scenarios"]["pdph-acute-red-flags"]
        scenario["what"] += " Check the blood pressure every 15 minutes."

    edit(folder / "valuesets.yaml", add_flag)
    edit(folder / "rules.yaml", use_flag)
    settings = Settings(
        hooks_dir=hooks_copy,
        database_url=f"sqlite:///{tmp_path / 's.sqlite3'}",
        auth_required=False,
    )
    app = create_app(settings, clock=lambda: NOW)
    ct_head = concept(CPT, "70450", "CT head without contrast")
    by_phrase = service_request("sr-1", ct_head, concept(text="headache, hypertensive crisis"))
    by_code = [lumbar_puncture(30), pdph(), condition(concept(ICD10CM, "I16.1"), at(2))]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            url = "/cds-services/pdph-imaging-order-sign"
            phrased = await client.post(url, json=hook_request([by_phrase], [lumbar_puncture(30)]))
            coded = await client.post(
                url, json=hook_request([service_request("sr-1", ct_head)], by_code)
            )
    for response in (phrased, coded):
        [card] = response.json()["cards"]
        assert card["source"]["topic"]["code"] == "pdph-acute-red-flags"
        assert "Check the blood pressure every 15 minutes." in card["detail"]
        assert "hypertensive" in card["detail"].lower()


ONE_LINE_MISTAKES = [
    (
        "rules.yaml",
        lambda d: d["scenarios"]["pdph-acute"].update(
            advice="Within {acute_window_hour} hours the diagnosis is clinical."
        ),
        "rules.yaml: scenarios.pdph-acute.advice: unknown placeholder {acute_window_hour}",
    ),
    (
        "rules.yaml",
        lambda d: d["scenarios"]["pdph-acute"].update(watch_for="Keep {ordered} in mind."),
        "rules.yaml: scenarios.pdph-acute.watch_for: unknown placeholder {ordered}",
    ),
    (
        "rules.yaml",
        lambda d: d["scenarios"]["pdph-acute"].update(summary="{ordered: usually not appropriate"),
        "rules.yaml: scenarios.pdph-acute.summary: not a valid text with placeholders",
    ),
    (
        "cards.yaml",
        lambda d: d["labels"].update(hours="{hour} h"),
        "cards.yaml: labels.hours: unknown placeholder {hour}",
    ),
    (
        "cards.yaml",
        lambda d: d["suggestions"].update(add="Add {ordered}"),
        "cards.yaml: suggestions.add: unknown placeholder {ordered}",
    ),
    (
        "valuesets.yaml",
        lambda d: d["findings"]["fever"]["text"].append("(unclosed"),
        "valuesets.yaml: findings.fever.text[",
    ),
    (
        "imaging.yaml",
        lambda d: d["text"]["modality"]["ct"].append("[CT"),
        "imaging.yaml: text.modality.ct[",
    ),
    (
        "imaging.yaml",
        lambda d: d["classify"][0].update(all=["modality.pet"]),
        "imaging.yaml: classify[0]: unknown parts ['modality.pet']",
    ),
    (
        "valuesets.yaml",
        lambda d: d["procedures"]["epidural-blood-patch"].update(role="patch"),
        "valuesets.yaml: procedures.epidural-blood-patch.role: unknown role 'patch'",
    ),
    (
        "valuesets.yaml",
        lambda d: d["procedures"]["delivery"].update(finding="post-partum"),
        "valuesets.yaml: procedures.delivery.finding: unknown finding 'post-partum'",
    ),
    (
        "valuesets.yaml",
        lambda d: d["body-temperature"].update(finding="pyrexia"),
        "valuesets.yaml: body-temperature.finding: unknown finding 'pyrexia'",
    ),
    (
        "valuesets.yaml",
        lambda d: d["blood-pressure"]["findings"].update(severe_range="severe-bp"),
        "valuesets.yaml: blood-pressure.findings.severe_range: unknown finding 'severe-bp'",
    ),
    (
        "rules.yaml",
        lambda d: d["finding_groups"].pop("thunderclap"),
        "rules.yaml: finding_groups: thunderclap missing",
    ),
    (
        "rules.yaml",
        lambda d: d["precedence"][0]["when"].append("not finding in red_flag"),
        "rules.yaml: precedence[0]: unknown condition 'finding in red_flag'",
    ),
]


@pytest.mark.parametrize(("file", "change", "message"), ONE_LINE_MISTAKES)
def test_a_text_or_pattern_mistake_is_one_line_naming_file_and_key(
    hooks_copy: Path,
    file: str,
    change: Callable[[dict], None],
    message: str,  # type: ignore[type-arg]
) -> None:
    edit(hooks_copy / "pdph_imaging" / file, change)
    with pytest.raises(KnowledgeError) as raised:
        load_knowledge(hooks_copy / "pdph_imaging")
    text = str(raised.value)
    assert text.startswith(message) or message in text, text
    assert "\n" not in text
