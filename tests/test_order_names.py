"""Order names as EHR catalogues write them (SPEC §3): a corpus of real-world styles with the study
type each must be read as: LOINC Playbook long common and short names, CPT descriptors, and the
all-capitals, slash and abbreviation styles of catalogues (NCHCT, CTH, NONCON, W/WO, w/ + w/o gad,
C/T/L SPINE, CTA/CTV/MRA/MRV, MR/CT/NM cisternography). Angiograms and venograms are their own types,
never a plain CT or MRI head; a name the classifier cannot place is never guessed (None)."""

from __future__ import annotations

from collections import Counter

import pytest

from cds_service.knowledge import Knowledge
from cds_service.pipeline.classify import classify_study

CORPUS: dict[str | None, list[str]] = {
    "ct-head-without": [
        "CT Head WO contrast",
        "CT HEAD WO CONTRAST",
        "CT head without contrast",
        "CT BRAIN WITHOUT CONTRAST",
        "CT BRAIN NONCON",
        "CT HEAD NON CONTRAST",
        "CT head non-contrast",
        "NCHCT",
        "NCCT head",
        "CTH w/o",
        "CTH",
        "CT head",
        "CT HEAD/BRAIN WO",
        "CT head or brain without contrast material",
        "Computed tomography, head or brain; without contrast material",
        "CT HEAD W/O CONTRAST",
        "Head CT without contrast",
        "CT CRANIUM WO",
        "CT HEAD STROKE PROTOCOL",
        "CT head (non-contrast)",
        "CT Head plain",
        "CAT scan of the head",
    ],
    "ct-head-with": [
        "CT Head W contrast IV",
        "CT HEAD W CONTRAST",
        "CT head with contrast",
        "CT BRAIN W/ CONTRAST",
        "CT head with IV contrast",
    ],
    "ct-head-without-and-with": [
        "CT Head WO and W contrast IV",
        "CT HEAD W/WO",
        "CT head without and with contrast",
        "CT HEAD W/WO CONTRAST",
        "Computed tomography, head or brain; without contrast material, followed by contrast material(s) and further sections",
        "CT BRAIN WITH AND WITHOUT CONTRAST",
    ],
    "mri-head-without-and-with": [
        "MR Brain WO and W contrast IV",
        "MRI BRAIN W/WO CONTRAST",
        "MRI brain w/ + w/o gad",
        "MRI BRAIN W AND WO CONTRAST",
        "MRI head with and without contrast",
        "MRI BRAIN WITH & WITHOUT CONTRAST",
        "MRI brain pre and post contrast",
        "MRI BRAIN W+WO",
        "MR BRAIN WWO",
        "MRI brain +/- gad",
        "MRI brain without contrast, followed by contrast and further sequences",
        "MRI BRAIN W/ AND W/O CONTRAST",
        "MRI HEAD W/WO",
        "Magnetic resonance imaging brain without and with contrast",
    ],
    "mri-head-without": [
        "MR Brain WO contrast",
        "MRI BRAIN WO CONTRAST",
        "MRI brain without contrast",
        "MRI HEAD W/O",
        "MRI brain non-contrast",
        "MRI BRAIN WITHOUT IV CONTRAST",
        "MRI brain noncon",
    ],
    "mri-head-with": [
        "MR Brain W contrast IV",
        "MRI brain with contrast",
        "MRI BRAIN W/ GAD",
        "MRI brain post-contrast",
        "MRI HEAD WITH GADOLINIUM",
    ],
    "mri-head-unspecified": [
        "MRI brain",
        "MR BRAIN",
        "MRI HEAD",
        "MRI brain seizure protocol",
        "MRI IAC",
        "MRI pituitary",
        "MR Brain",
        "MRI ORBITS",
    ],
    "mri-spine-cervical": [
        "MR Cervical spine WO contrast",
        "MRI C-SPINE WO",
        "MRI CERVICAL SPINE W/WO",
        "MRI c spine",
        "MRI spinal canal, cervical, without contrast material",
        "MR C-spine",
    ],
    "mri-spine-thoracic": [
        "MR Thoracic spine WO and W contrast IV",
        "MRI T-SPINE W/WO",
        "MRI thoracic spine without contrast",
        "MRI T spine",
        "MRI DORSAL SPINE",
    ],
    "mri-spine-lumbar": [
        "MR Lumbar spine WO contrast",
        "MRI L-SPINE WO",
        "MRI LUMBAR SPINE W/O CONTRAST",
        "MRI LS SPINE",
        "MRI lumbosacral spine",
        "MRI L spine w/wo",
    ],
    "mri-spine-complete": [
        "MR C/T/L SPINE W/WO",
        "MRI whole spine",
        "MRI TOTAL SPINE W/WO",
        "MR Cervical and thoracic and lumbar spine WO and W contrast IV",
        "MRI cervical and thoracic spine",
        "MRI complete spine without and with contrast",
        "MRI ENTIRE SPINE",
        "MRI neuraxis",
        "MRI CTL SPINE",
    ],
    "mri-spine-unspecified": [
        "MRI SPINE",
        "MRI spine screening",
        "MR spinal cord",
    ],
    "ct-spine": [
        "CT Cervical spine WO contrast",
        "CT C-SPINE WO",
        "CT LUMBAR SPINE W/O",
        "CT thoracic spine",
        "CT L-SPINE",
    ],
    "ct-myelography": [
        "CT MYELOGRAM LUMBAR",
        "CT myelography complete spine",
        "Post-myelogram CT",
        "CT spine with intrathecal contrast",
        "CT MYELO C-SPINE",
    ],
    "myelography": [
        "RF Myelogram lumbar",
        "Myelography lumbar",
        "Myelogram cervical",
        "FL MYELOGRAM",
    ],
    "dsm-complete-spine": [
        "Digital subtraction myelography",
        "DSM complete spine",
        "Dynamic myelography",
        "Myelography, digital subtraction (DSM), complete spine",
        "DSM LATERAL DECUBITUS",
        "Digital subtraction myelogram, complete spine",
    ],
    "cta-head": [
        "CTA Head and Neck W contrast IV",
        "CTA HEAD/NECK",
        "CT ANGIO HEAD/NECK W/WO",
        "CT angiography head",
        "CTA BRAIN",
        "CT ANGIOGRAM HEAD",
        "CTA head vessels",
        "CT angiography of the brain",
    ],
    "ctv-head": [
        "CTV head",
        "CT VENOGRAM HEAD",
        "CT venography brain",
        "CTV BRAIN W CONTRAST",
    ],
    "mra-head": [
        "MRA head WO contrast",
        "MRA BRAIN",
        "MR ANGIO HEAD",
        "MRA head and neck",
        "MR angiography head",
    ],
    "mrv-head": [
        "MRV head",
        "MR VENOGRAM BRAIN",
        "MRV BRAIN W/WO",
        "MR venography head",
        "MRV HEAD WO",
    ],
    "mr-cisternography": [
        "MR cisternography",
        "MRI cisternogram",
        "MR CISTERNOGRAM",
    ],
    "ct-cisternography": [
        "CT cisternogram",
        "CT cisternography",
        "CT CISTERNOGRAM W INTRATHECAL CONTRAST",
    ],
    "nm-cisternography": [
        "NM cisternogram",
        "Radionuclide cisternography",
        "Indium-111 cisternogram",
        "NM CISTERNOGRAPHY",
    ],
    "other-head-spine": [
        "XR skull",
        "X-ray cervical spine",
        "XR L-SPINE 2 VIEWS",
        "Fluoroscopy lumbar spine",
        "XR C-SPINE FLEX/EXT",
    ],
    None: [
        "MRI abdomen",
        "CT chest",
        "Chest X-ray",
        "MRI knee",
        "Echocardiogram",
        "cisternogram",
        "Lumbar puncture",
        "CBC",
        "Head circumference",
        "Ultrasound head",
        "CT abdomen and pelvis",
        "MRI pelvis",
        "Neurology consult",
        "EEG",
        "Epidural blood patch",
    ],
}


def test_the_corpus_is_large_enough() -> None:
    assert sum(len(names) for names in CORPUS.values()) >= 150


def test_order_names_as_catalogues_write_them(
    knowledge: Knowledge, capsys: pytest.CaptureFixture[str]
) -> None:
    right: Counter[str | None] = Counter()
    wrong: list[str] = []
    for study, names in CORPUS.items():
        for name in names:
            found = classify_study({"text": name}, knowledge)
            if found == study:
                right[study] += 1
            else:
                wrong.append(f"{name!r}: {found} (expected {study})")
    with capsys.disabled():
        print("\norder names (recognised / total per study type):")
        for study, names in CORPUS.items():
            print(f"  {study}: {right[study]}/{len(names)}")
    assert wrong == []


@pytest.mark.parametrize(
    ("name", "study"),
    [
        ("CT ANGIO HEAD/NECK W/WO", "cta-head"),
        ("MRV head", "mrv-head"),
        ("CTV head", "ctv-head"),
        ("MRA BRAIN", "mra-head"),
    ],
)
def test_angiograms_and_venograms_are_never_a_plain_head_study(
    name: str, study: str, knowledge: Knowledge
) -> None:
    assert classify_study({"text": name}, knowledge) == study
