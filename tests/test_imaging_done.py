"""Imaging already done, read from ImagingStudy as PACS-fed EHRs record it (SPEC §3): the study's
description, every series' description and start, and procedureCode, classified together; and the SIH
look-back (an MRI older than it is no initial imaging: plain `sih`, MRIs first)."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.knowledge import Scenario
from tests.support.builders import (
    CPT,
    MRI_BRAIN_WWO,
    PID,
    at,
    concept,
    condition,
    created_texts,
    evaluate_now,
    hook_request,
    lumbar_puncture,
    pdph,
    service_request,
)

MRI = service_request("sr-1", MRI_BRAIN_WWO)


def imaging_study(
    description: str | None = None,
    started: float | None = 48,
    series: list[dict[str, Any]] = (),  # type: ignore[assignment]
    **extra: Any,
) -> dict[str, Any]:
    study: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "status": "available",
        "subject": {"reference": f"Patient/{PID}"},
        "series": list(series),
        **extra,
    }
    if description:
        study["description"] = description
    if started is not None:
        study["started"] = at(started)
    return study


def series(description: str, started: float | None = None) -> dict[str, Any]:
    s: dict[str, Any] = {
        "uid": "1.2.840.1",
        "modality": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "RF"},
        "description": description,
    }
    if started is not None:
        s["started"] = at(started)
    return s


DSM_DONE = [
    (
        "in the study's description",
        imaging_study("Digital subtraction myelography, complete spine"),
    ),
    (
        "in a series description only",
        imaging_study("Myelogram", series=[series("DSM prone, complete spine")]),
    ),
    (
        "dated by its series only",
        imaging_study(
            "Digital subtraction myelography", started=None, series=[series("prone", 48)]
        ),
    ),
    (
        "coded 62305 with the technique in words",
        imaging_study("Myelogram, digital subtraction", procedureCode=[concept(CPT, "62305")]),
    ),
]


@pytest.mark.parametrize("study", [d[1] for d in DSM_DONE], ids=[d[0] for d in DSM_DONE])
def test_a_dsm_recorded_as_an_imaging_study_is_never_suggested_again(study: dict[str, Any]) -> None:
    evaluation = evaluate_now(hook_request([MRI], [lumbar_puncture(120), pdph(100), study]))
    [decision] = evaluation.decisions
    assert decision.scenario is Scenario.PDPH_PERSISTENT
    assert decision.variant == "dsm-done-since-puncture"
    texts = created_texts(*evaluation.response.to_json_dict()["cards"])
    assert texts and not any("digital subtraction" in t.lower() for t in texts)


ORTHOSTATIC = condition(concept(text="orthostatic headache for weeks"), at(24 * 20))


@pytest.mark.parametrize(
    ("days_ago", "expected"), [(100, Scenario.SIH_AFTER_INITIAL_IMAGING), (200, Scenario.SIH)]
)
def test_an_mri_older_than_the_sih_look_back_is_no_initial_imaging(
    days_ago: int, expected: Scenario
) -> None:
    mri = imaging_study("MRI brain without and with contrast", started=24 * days_ago)
    dsm = service_request("sr-1", concept(text="Digital subtraction myelography, complete spine"))
    evaluation = evaluate_now(hook_request([dsm], [ORTHOSTATIC, mri]))
    assert evaluation.decisions[0].scenario is expected
