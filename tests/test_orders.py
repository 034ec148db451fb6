"""Recognising draft imaging orders: codes, refinements and the text matcher."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.knowledge import Knowledge
from cds_service.pipeline.classify import classify_study
from cds_service.pipeline.orders import draft_imaging_orders
from tests.support.builders import CPT, LOINC, bundle, concept, service_request

CODED = [
    (concept(CPT, "70450"), "ct-head-without"),
    (concept(CPT, "70460"), "ct-head-with"),
    (concept(CPT, "70470"), "ct-head-without-and-with"),
    (concept(CPT, "70551"), "mri-head-without"),
    (concept(CPT, "70552"), "mri-head-with"),
    (concept(CPT, "70553"), "mri-head-without-and-with"),
    (concept(LOINC, "24587-8"), "mri-head-without-and-with"),
    (concept(LOINC, "24589-4"), "mri-head-with"),
    (concept(CPT, "72156"), "mri-spine-cervical"),
    (concept(CPT, "72157"), "mri-spine-thoracic"),
    (concept(CPT, "72148"), "mri-spine-lumbar"),
    (concept(CPT, "72131"), "ct-spine"),
    (concept(CPT, "72270"), "myelography"),
    (
        concept(CPT, "72270", "Myelography, digital subtraction, complete spine"),
        "dsm-complete-spine",
    ),
    (concept(CPT, "72270", "Dynamic myelography"), "dsm-complete-spine"),
    (concept(CPT, "72270", "CT myelography 2+ regions"), "ct-myelography"),
    (concept(CPT, "72132", "CT lumbar spine with contrast (myelogram)"), "ct-myelography"),
    ({"coding": [{"system": CPT, "code": " 70553 "}]}, "mri-head-without-and-with"),
    # Code-only orders under the OID names of the same systems (SPEC §3).
    (concept("urn:oid:2.16.840.1.113883.6.12", "70553"), "mri-head-without-and-with"),
    (concept("urn:oid:2.16.840.1.113883.6.1", "30799-1"), "ct-head-without"),
    # LOINC Radiology Playbook, code only (hooks/pdph_imaging/imaging.yaml lists their source).
    (concept(LOINC, "30799-1"), "ct-head-without"),
    (concept(LOINC, "24725-4"), "ct-head-without"),
    (concept(LOINC, "24726-2"), "ct-head-without-and-with"),
    (concept(LOINC, "30657-1"), "mri-head-without"),
    (concept(LOINC, "24590-2"), "mri-head-unspecified"),
    (concept(LOINC, "24937-5"), "mri-spine-cervical"),
    (concept(LOINC, "24981-3"), "mri-spine-thoracic"),
    (concept(LOINC, "24967-2"), "mri-spine-lumbar"),
    (concept(LOINC, "30855-1"), "mri-spine-complete"),
    (concept(LOINC, "24965-6"), "ct-myelography"),
    (concept(LOINC, "30808-0"), "myelography"),
    (concept(LOINC, "36830-8"), "cta-head"),
    (concept(LOINC, "36881-1"), "mra-head"),
]

# Standard CPT long descriptors and LOINC long names, as an EHR sends them under a code this
# service does not know (e.g. a local code): the text decides, and must read their wording.
DESCRIPTORS = [
    (
        "Magnetic resonance (eg, proton) imaging, brain (including brain stem); without contrast "
        "material, followed by contrast material(s) and further sequences",
        "mri-head-without-and-with",
    ),
    (
        "Magnetic resonance (eg, proton) imaging, brain (including brain stem); without contrast "
        "material",
        "mri-head-without",
    ),
    ("Computed tomography, head or brain; without contrast material", "ct-head-without"),
    (
        "Computed tomography, head or brain; without contrast material, followed by contrast "
        "material(s) and further sections",
        "ct-head-without-and-with",
    ),
    (
        "Magnetic resonance (eg, proton) imaging, spinal canal and contents, without contrast "
        "material, followed by contrast material(s) and further sequences; cervical",
        "mri-spine-cervical",
    ),
    ("CT Lumbar spine W contrast IT", "ct-myelography"),
    ("RF Lumbar spine Views W contrast IT", "myelography"),
    ("MR Cervical and thoracic and lumbar spine WO and W contrast IV", "mri-spine-complete"),
    ("CTA Head vessels W contrast IV", "cta-head"),
]


@pytest.mark.parametrize(("text", "study"), DESCRIPTORS)
def test_standard_descriptors_under_an_unknown_code(
    text: str, study: str, knowledge: Knowledge
) -> None:
    code = {"coding": [{"system": "urn:oid:1.2.840.114350.1.13.0", "code": "IMG123"}], "text": text}
    assert classify_study(code, knowledge) == study


TEXT = [
    ("MRI BRAIN W/O CONTRAST", "mri-head-without"),
    ("MRI brain w/wo contrast", "mri-head-without-and-with"),
    ("MR Brain WO and W contrast IV", "mri-head-without-and-with"),
    ("MRI head with and without gadolinium", "mri-head-without-and-with"),
    ("MRI brain with contrast", "mri-head-with"),
    ("Magnetic resonance imaging of the brain", "mri-head-unspecified"),
    ("CT head", "ct-head-without"),
    ("CT head non-contrast", "ct-head-without"),
    ("CT brain with contrast", "ct-head-with"),
    ("MRI lumbar spine", "mri-spine-lumbar"),
    ("MRI C-spine w/o", "mri-spine-cervical"),
    ("MRI cervical, thoracic and lumbar spine", "mri-spine-complete"),
    ("MRI whole spine w/wo", "mri-spine-complete"),
    ("MRI spine", "mri-spine-unspecified"),
    ("CT myelogram complete spine", "ct-myelography"),
    ("Digital subtraction myelography", "dsm-complete-spine"),
    ("DSM complete spine", "dsm-complete-spine"),
    ("Lumbar myelogram", "myelography"),
    ("CTA head and neck", "cta-head"),
    ("MR angiography brain", "mra-head"),
    ("X-ray lumbar spine", "other-head-spine"),
    ("CT lumbar spine", "ct-spine"),
    ("MRI knee", None),
    ("CT abdomen and pelvis", None),
    ("Complete blood count", None),
    ("", None),
]


@pytest.mark.parametrize(("code", "study"), CODED)
def test_coded_orders(code: dict[str, Any], study: str, knowledge: Knowledge) -> None:
    assert classify_study(code, knowledge) == study


@pytest.mark.parametrize(("text", "study"), TEXT)
def test_text_only_orders(text: str, study: str | None, knowledge: Knowledge) -> None:
    assert classify_study({"text": text}, knowledge) == study


def test_coding_display_is_read_when_there_is_no_text(knowledge: Knowledge) -> None:
    code = {"coding": [{"system": "urn:local", "code": "X1", "display": "MRI brain wo/w"}]}
    assert classify_study(code, knowledge) == "mri-head-without-and-with"


def test_selection_duplicates_and_invalid_orders(knowledge: Knowledge) -> None:
    mri = service_request("sr-1", concept(CPT, "70553"))
    ct = service_request("sr-2", concept(CPT, "70450"))
    broken = {"resourceType": "ServiceRequest", "id": "sr-3", "code": concept(CPT, "70551")}
    no_id = service_request("x", concept(CPT, "70551"))
    del no_id["id"]
    draft = bundle([mri, mri, ct, broken, no_id, {"resourceType": "MedicationRequest", "id": "m"}])
    every = draft_imaging_orders(draft, None, knowledge)
    assert [o.reference for o in every] == ["ServiceRequest/sr-1", "ServiceRequest/sr-2"]
    selected = draft_imaging_orders(
        draft, ["ServiceRequest/sr-2", "ServiceRequest/missing"], knowledge
    )
    assert [o.reference for o in selected] == ["ServiceRequest/sr-2"]
