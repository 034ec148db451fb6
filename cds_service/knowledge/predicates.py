"""The questions the precedence and the scenario variants of rules.yaml may ask about one draft order:
the vocabulary the engine answers (cds_service/pipeline/decide.py implements each one, and fails at
import when it does not implement exactly these), with the finding groups and procedure roles the
engine reads by name. Knowledge names them; it never imports the engine."""

from __future__ import annotations

from collections.abc import Collection

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


# A condition may also ask for any finding of a group rules.yaml defines: "finding in <group>" (and
# "not finding in <group>"), so a group an informaticist adds can decide without an engine change.
IN_GROUP = "finding in "

# The finding groups (rules.yaml `finding_groups`) the engine reads by name; rules.yaml may define more.
FINDING_GROUPS: dict[str, str] = {
    "headache_evidence": "without one of these the service stays silent",
    "intracranial_hypotension": "evidence of intracranial hypotension or a CSF leak",
    "puncture_evidence": "diagnoses that prove a dural puncture without a recorded Procedure",
    "durable": "count while active, whatever their age",
    "thunderclap": "a sudden severe onset",
    "altered_mental_status": "obtundation or altered mental status",
    "red_flags": "image now, whoever the patient",
    "obstetric_context": "pregnant or postpartum",
    "pregnant": "pregnant now: no gadolinium, no spinal radiation suggested",
    "delivered": "postpartum",
    "obstetric_red_flags": "red flags only in a pregnant or postpartum patient",
    "pre_eclampsia_signs": "make pre-eclampsia, eclampsia or PRES the likely cause of a red flag",
    "other_indications": "a reason for imaging other than the headache",
    "not_the_patients": "findings written about someone else (family history)",
}

# What a procedure concept (valuesets.yaml `procedures`, its `role`) is to the engine.
PROCEDURE_ROLES: dict[str, str] = {
    "dural-puncture": "a puncture of the dura: the time since the last one places the scenario",
    "blood-patch": "a treatment of a leak, never a new puncture (SPEC §2)",
    "delivery": "a delivery: recent, it makes the patient postpartum (the concept's `finding`)",
}


def unknown_condition(condition: str, groups: Collection[str] = ()) -> str | None:
    """What a precedence condition names ("not <name>" too), when it is neither one of these
    predicates nor "finding in <group>" of one of `groups`."""
    name = condition.removeprefix("not ")
    if name.startswith(IN_GROUP):
        return None if name.removeprefix(IN_GROUP) in groups else name
    return None if name in PREDICATES else name
