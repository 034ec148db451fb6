"""The questions the precedence and the scenario variants of rules.yaml may ask about one draft order:
the vocabulary the engine answers (cds_service/pipeline/decide.py implements each one, and fails at
import when it does not implement exactly these). Knowledge names them; it never imports the engine."""

from __future__ import annotations

PREDICATES: dict[str, str] = {
    "child": "the patient is younger than the adult age",
    "reason-not-headache": "the order states a reason recognised as not headache-related",
    "headache-evidence": "a headache, post-puncture headache, orthostatic headache or leak finding",
    "thunderclap": "a sudden severe (thunderclap) onset",
    "altered-mental-status": "obtundation or altered mental status",
    "red-flag": "any red flag",
    "obstetric-red-flag": "a red flag of pregnancy or postpartum, in a pregnant or postpartum patient",
    "possible-pre-eclampsia": "a pregnant or postpartum patient with a sign of pre-eclampsia",
    "intracranial-hypotension": "orthostatic headache, intracranial hypotension or CSF leak evidence",
    "leak-evidence": "evidence specific to a leak: orthostatic headache, PDPH, leak diagnosis",
    "puncture-context": "any puncture, post-puncture diagnosis, blood patch or leak evidence",
    "blood-patch": "an epidural blood patch after the last puncture",
    "blood-patch-then-headache": "a headache since that blood patch",
    "uncertain-puncture": "a puncture whose time cannot be placed",
    "puncture-within-acute-window": "the last dated puncture is within the acute window",
    "puncture-beyond-acute-window": "the last dated puncture is beyond the acute window",
    "puncture-diagnosis": "a post-dural-puncture diagnosis proves a puncture",
    "initial-imaging-done": "an MRI head or spine within the SIH look-back",
    "dsm-done-since-puncture": "a digital subtraction myelography since the last puncture",
    "ct-head-done-within-hours": "a CT head without contrast done within thunderclap_ct_hours",
    "repeat-of-recent-mri": "the drafted MRI repeats one within the SIH look-back",
    "puncture-diagnosis-beyond-acute-window": "that diagnosis is older than the acute window",
}


def unknown_condition(condition: str) -> str | None:
    """The predicate a precedence condition names ("not <name>" too), when it is not one of these."""
    name = condition.removeprefix("not ")
    return None if name in PREDICATES else name
