"""Benchmark payloads: the seed scenarios as EHRs send them, and synthetic large patients built around
the persistent-PDPH seed (so every payload has a known, checked outcome).

A large patient is mostly noise a real record carries (chronic problems, vital signs, unrelated
procedures), with the few resources the rules need: the lumbar puncture 96 h ago, the post-dural-
puncture headache, a normal temperature. Codes in the noise are ordinary ICD-10-CM, SNOMED CT, CPT and
LOINC codes of everyday care; none is in the service's value sets, so the text fallback runs on them.
Generation is seeded: the same arguments give the same bytes.
"""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from cds_tools.fixtures import FIXTURES_DIR, load_fixture

SEED_FIXTURES = {
    "seed-acute": FIXTURES_DIR / "seed-acute-34f-after-ms-workup-lp.json",
    "seed-persistent": FIXTURES_DIR / "seed-persistent-45f-4-days-after-lp.json",
}
LARGE_BASE = "seed-persistent"

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"

# (ICD-10-CM, SNOMED CT, text) of common chronic and past problems.
CHRONIC_CONDITIONS = [
    ("I10", "59621000", "Essential hypertension"),
    ("E11.9", "44054006", "Type 2 diabetes mellitus"),
    ("E78.5", "55822004", "Hyperlipidemia"),
    ("J45.909", "195967001", "Asthma"),
    ("F32.9", "35489007", "Depressive disorder"),
    ("K21.9", "235595009", "Gastroesophageal reflux disease"),
    ("E03.9", "40930008", "Hypothyroidism"),
    ("E66.9", "414916001", "Obesity"),
    ("M17.9", "239873007", "Osteoarthritis of knee"),
    ("F41.1", "21897009", "Generalized anxiety disorder"),
    ("N18.30", "433144002", "Chronic kidney disease stage 3"),
    ("J30.9", "61582004", "Allergic rhinitis"),
    ("G35", "24700007", "Multiple sclerosis"),
    ("D50.9", "87522002", "Iron deficiency anemia"),
    ("I48.91", "49436004", "Atrial fibrillation"),
    ("E55.9", "34713006", "Vitamin D deficiency"),
    ("G47.00", "193462001", "Insomnia"),
    ("F17.210", "56294008", "Nicotine dependence"),
    ("M54.50", "279039007", "Low back pain"),
    ("L40.0", "200956002", "Psoriasis vulgaris"),
]
CLINICAL_STATUSES = ["active"] * 6 + ["resolved", "inactive", "remission"]

# (CPT, SNOMED CT, text) of unrelated procedures.
OTHER_PROCEDURES = [
    ("45378", "73761001", "Colonoscopy"),
    ("36415", "28520004", "Venipuncture"),
    ("93000", "29303009", "Electrocardiographic procedure"),
    ("93306", "40701008", "Echocardiography"),
    ("44950", "80146002", "Appendectomy"),
    ("90686", "86198006", "Influenza vaccination"),
    ("71046", "399208008", "Chest X-ray"),
    ("97110", "229070002", "Therapeutic exercise"),
    ("11042", "36777000", "Debridement of wound"),
    ("66984", "415089008", "Cataract extraction with lens implant"),
]

# (LOINC, text, unit, low, high) of vital signs.
VITALS = [
    ("8867-4", "Heart rate", "/min", 55, 100),
    ("9279-1", "Respiratory rate", "/min", 12, 20),
    ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", 94, 100),
    ("29463-7", "Body weight", "kg", 55, 95),
    ("8302-2", "Body height", "cm", 155, 180),
    ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 19, 34),
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 105, 145),
    ("8462-4", "Diastolic blood pressure", "mm[Hg]", 60, 92),
    ("8310-5", "Body temperature", "Cel", 36.1, 37.4),
]


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def seed_request(name: str, now: datetime) -> dict[str, Any]:
    """The request of a seed fixture, times rendered against `now`."""
    return load_fixture(SEED_FIXTURES[name], now)["request"]  # type: ignore[no-any-return]


def expected_cards(name: str, now: datetime) -> list[dict[str, Any]]:
    return load_fixture(SEED_FIXTURES[name], now)["expected"]["cards"]  # type: ignore[no-any-return]


def _subject(patient_id: str) -> dict[str, str]:
    return {"reference": f"Patient/{patient_id}"}


def _condition(rng: random.Random, i: int, patient_id: str, now: datetime) -> dict[str, Any]:
    icd, sct, text = rng.choice(CHRONIC_CONDITIONS)
    status = rng.choice(CLINICAL_STATUSES)
    onset = now - timedelta(days=rng.uniform(40, 365 * 15))
    return {
        "resourceType": "Condition",
        "id": f"cond-{i}",
        "meta": {"lastUpdated": _iso(onset + timedelta(days=1))},
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": status,
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "confirmed",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": rng.choice(["problem-list-item", "encounter-diagnosis"]),
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {"system": ICD10, "code": icd, "display": text},
                {"system": SNOMED, "code": sct, "display": text},
            ],
            "text": text,
        },
        "subject": _subject(patient_id),
        "onsetDateTime": _iso(onset),
        "recordedDate": _iso(onset + timedelta(hours=2)),
    }


def _procedure(rng: random.Random, i: int, patient_id: str, now: datetime) -> dict[str, Any]:
    cpt, sct, text = rng.choice(OTHER_PROCEDURES)
    at = now - timedelta(days=rng.uniform(1, 365 * 12))
    return {
        "resourceType": "Procedure",
        "id": f"proc-{i}",
        "status": rng.choice(["completed"] * 9 + ["not-done"]),
        "code": {
            "coding": [
                {"system": CPT, "code": cpt, "display": text},
                {"system": SNOMED, "code": sct, "display": text},
            ],
            "text": text,
        },
        "subject": _subject(patient_id),
        "performedPeriod": {"start": _iso(at), "end": _iso(at + timedelta(minutes=40))},
    }


# Imaging reports of everyday care: head and spine studies the classifier recognises, and others.
IMAGING_REPORTS = [
    ("http://loinc.org", "24627-2", "XR Chest 2 Views"),
    ("http://loinc.org", "36813-4", "CT Abdomen and Pelvis W contrast IV"),
    ("http://www.ama-assn.org/go/cpt", "70450", "CT head without contrast"),
    ("http://www.ama-assn.org/go/cpt", "70553", "MRI brain without and with contrast"),
    ("http://loinc.org", "24967-2", "MR Lumbar spine WO and W contrast IV"),
    ("http://loinc.org", "30592-0", "CT Cervical spine WO contrast"),
    ("http://loinc.org", "24558-9", "US Abdomen"),
]


def _imaging_report(rng: random.Random, i: int, patient_id: str, now: datetime) -> dict[str, Any]:
    system, code, text = rng.choice(IMAGING_REPORTS)
    # More than 30 days old: history that changes neither the scenario nor the suggestions.
    at = now - timedelta(days=rng.uniform(31, 365 * 12))
    return {
        "resourceType": "DiagnosticReport",
        "id": f"dr-{i}",
        "status": rng.choice(["final"] * 8 + ["amended", "entered-in-error"]),
        "category": [{"coding": [{"system": "http://loinc.org", "code": "LP29684-5"}]}],
        "code": {"coding": [{"system": system, "code": code, "display": text}], "text": text},
        "subject": _subject(patient_id),
        "effectiveDateTime": _iso(at),
        "issued": _iso(at + timedelta(hours=3)),
        "conclusion": rng.choice(["No acute abnormality.", "Stable appearances.", "Normal."]),
    }


def _observation(rng: random.Random, i: int, patient_id: str, now: datetime) -> dict[str, Any]:
    code, text, unit, low, high = rng.choice(VITALS)
    value = round(rng.uniform(low, high), 1)
    # Mostly older encounters, a few in the last days (inside the observation window).
    hours_ago = rng.uniform(4, 72) if rng.random() < 0.05 else rng.uniform(80, 24 * 365 * 5)
    return {
        "resourceType": "Observation",
        "id": f"obs-{i}",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                        "display": "Vital Signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": code, "display": text}], "text": text},
        "subject": _subject(patient_id),
        "effectiveDateTime": _iso(now - timedelta(hours=hours_ago)),
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def _bundle(resources: list[dict[str, Any]], base: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


def large_patient_request(
    now: datetime,
    conditions: int = 1000,
    procedures: int = 200,
    observations: int = 500,
    seed: int = 6,
    imaging_reports: int = 200,
) -> dict[str, Any]:
    """The persistent-PDPH seed request with its prefetch grown to the given counts (the seed's own
    resources included in them), the relevant resources placed among the noise; 200 radiology
    reports of imaging history by default (issue 12's large-patient figure)."""
    request = copy.deepcopy(seed_request(LARGE_BASE, now))
    rng = random.Random(seed)
    patient_id = request["context"]["patientId"]
    base = request.get("fhirServer", "https://ehr.example.org/fhir")
    prefetch = request["prefetch"]
    for key, count, make in (
        ("conditions", conditions, _condition),
        ("procedures", procedures, _procedure),
        ("observations", observations, _observation),
        ("imagingReports", imaging_reports, _imaging_report),
    ):
        relevant = [e["resource"] for e in prefetch.get(key, {}).get("entry", [])]
        noise = [make(rng, i, patient_id, now) for i in range(max(0, count - len(relevant)))]
        for resource in relevant:
            noise.insert(rng.randrange(len(noise) + 1), resource)
        prefetch[key] = _bundle(noise, base)
    return request


def scaled_request(now: datetime, total: int, seed: int = 6) -> dict[str, Any]:
    """A patient of about `total` resources, split like the large patient (1000:200:500), without
    imaging reports, so the scaling rows stay comparable across runs."""
    conditions = max(1, round(total * 1000 / 1700))
    procedures = max(1, round(total * 200 / 1700))
    observations = max(1, total - conditions - procedures)
    return large_patient_request(now, conditions, procedures, observations, seed, imaging_reports=0)


def resource_count(request: dict[str, Any]) -> int:
    return sum(
        len(v.get("entry", [])) if v.get("resourceType") == "Bundle" else 1
        for v in request.get("prefetch", {}).values()
        if isinstance(v, dict)
    )


def encode(request: dict[str, Any]) -> bytes:
    return orjson.dumps(request)


def write_payload(request: dict[str, Any], path: Path) -> Path:
    path.write_bytes(encode(request))
    return path


def bench_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
