"""Whose finding, and when (SPEC §2): a phrase corpus for every red flag the knowledge reads in
words (hooks/pdph_imaging/rules.yaml finding_groups `red_flags`, `altered_mental_status` and
`thunderclap`; the concepts are valuesets.yaml `findings`).

For each concept, phrasings in five contexts, written the way clinicians write order reasons,
problem-list texts and nursing notes (abbreviations, "?", "r/o", lower case, no full stops):

- `affirmed`: the patient's current finding. A finding in question ("r/o meningitis", "?SAH",
  "concern for urosepsis") is affirmed too: a red flag suspected is a red flag (SPEC §2).
- `negated`: "no fever", "denies neck stiffness", "SAH ruled out".
- `family`: a relative's finding ("FHx SAH", "mother had meningitis") or a sick contact's.
- `hypothetical`: advice and conditions ("return if fever", "paracetamol PRN for fever",
  "monitor for seizures", "risk of ... explained").
- `historical`: a past, resolved episode ("h/o meningitis 2015", "previous SAH in 2010").

Only `affirmed` phrases are the patient's current finding. The corpus keeps a few traps among
them. A relative's word beside the patient's own finding: collateral history ("?febrile at home
per husband", "husband says she has been confused since last night") and the patient as a mother
("mother of two with seizure this morning", common in the obstetric population); reading these
as a family member's finding would hide a red flag. A past history followed by the presenting
complaint ("h/o migraine presenting with fever"): the history's scope ends where the presentation
begins.
tools/compare_context.py reads it with our matcher and with medSpaCy's ConText;
tests/test_context_corpus.py with our matcher alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

CONTEXTS: Final = ("affirmed", "negated", "family", "hypothetical", "historical")

Corpus = dict[str, dict[str, tuple[str, ...]]]

CORPUS: Final[Corpus] = {
    "fever": {
        "affirmed": (
            "fever since this morning",
            "febrile overnight, Tmax 38.9",
            "headache with fevers and rigors",
            "temp 38.6 on arrival",
            "?febrile at home per husband",
            "h/o migraine presenting with fever",
        ),
        "negated": (
            "no fever",
            "denies fevers or chills",
            "fever: absent",
            "negative for fever, no rash",
        ),
        "family": (
            "sick contacts: daughter with fever",
            "husband unwell with fever and cough",
            "mother had a fever last week",
            "children at home have had fevers",
        ),
        "hypothetical": (
            "return if fever",
            "paracetamol PRN for fever",
            "call if febrile or neck stiffness develops",
            "advised to seek help if she develops a fever",
        ),
        "historical": (
            "h/o fever 2 weeks ago, resolved",
            "previous febrile illness in March",
            "PMHx: recurrent fevers as a child",
            "history of fever after her last epidural",
        ),
    },
    "systemic-infection": {
        "affirmed": (
            "sepsis, source unclear",
            "raised CRP and WCC 18",
            "erythema at the epidural site",
            "r/o sepsis",
            "concern for urosepsis",
        ),
        "negated": (
            "no signs of systemic infection",
            "not septic",
            "WBC normal, no leukocytosis",
            "epidural site clean, no pus at the insertion site",
        ),
        "family": (
            "husband admitted with sepsis",
            "mother died of sepsis in 2019",
            "FHx: father septicaemia",
            "son had bacteraemia last month",
        ),
        "hypothetical": (
            "return if signs of infection at the epidural site",
            "monitor for signs of sepsis",
            "sepsis safety netting advice given",
            "call if redness at the puncture site develops",
        ),
        "historical": (
            "h/o urosepsis 2021",
            "previous sepsis after C-section",
            "PMHx: bacteraemia 2018",
            "history of SIRS after appendicectomy",
        ),
    },
    "hypertensive-emergency": {
        "affirmed": (
            "BP 190/115, headache",
            "hypertensive emergency",
            "severe HTN 200/120",
            "?hypertensive crisis, BP 185/125",
            "malignant hypertension with headache",
        ),
        "negated": (
            "no hypertensive crisis",
            "not a hypertensive emergency",
            "BP 128/80, no severe hypertension",
            "hypertensive emergency excluded",
        ),
        "family": (
            "father has malignant hypertension",
            "FHx hypertensive crisis (mother)",
            "family history of severe hypertension",
            "brother admitted with hypertensive emergency",
        ),
        "hypothetical": (
            "return if BP above 180/120",
            "labetalol PRN for BP 180/110 or higher",
            "monitor for hypertensive crisis",
            "seek help if severe hypertension",
        ),
        "historical": (
            "h/o hypertensive emergency 2019",
            "previous hypertensive crisis in 2020",
            "PMHx malignant hypertension",
            "history of severe HTN in last pregnancy",
        ),
    },
    "nuchal-rigidity": {
        "affirmed": (
            "neck stiffness",
            "nuchal rigidity on exam",
            "meningism +",
            "stiff neck and photophobia",
            "?meningism, Kernig positive",
        ),
        "negated": (
            "no neck stiffness",
            "denies neck stiffness",
            "neck supple, no meningism",
            "Kernig and Brudzinski negative",
        ),
        "family": (
            "son at home with fever and stiff neck",
            "daughter had neck stiffness and a rash last week",
            "family history: brother with nuchal rigidity from meningitis",
            "partner also has a stiff neck",
        ),
        "hypothetical": (
            "return if neck stiffness",
            "call if neck stiffness develops",
            "advised to seek help if stiff neck or rash",
            "watch for meningism",
        ),
        "historical": (
            "h/o stiff neck after whiplash 2015",
            "previous neck stiffness, resolved",
            "history of meningism with viral meningitis 2012",
            "nuchal rigidity last admission, now resolved",
        ),
    },
    "seizure": {
        "affirmed": (
            "witnessed seizure this morning",
            "GTCS x2 today",
            "post-ictal on arrival",
            "?seizure, found on floor",
            "tonic-clonic activity lasting 2 min",
            "partner witnessed a tonic-clonic seizure at home",
            "previously well presenting with seizure",
            "mother of two with seizure this morning",
        ),
        "negated": (
            "no seizures",
            "denies seizure activity",
            "no tonic-clonic movements",
            "seizure: none",
        ),
        "family": (
            "family history of seizures",
            "mother has epilepsy",
            "FHx epilepsy",
            "brother had febrile convulsions",
        ),
        "hypothetical": (
            "return if seizures",
            "monitor for seizures",
            "lorazepam PRN for seizure",
            "call 911 if she has a seizure",
        ),
        "historical": (
            "h/o seizures as a child",
            "history of epilepsy, seizure-free 10 yrs",
            "previous seizure in 2010",
            "febrile convulsion age 2",
        ),
    },
    "eclampsia": {
        "affirmed": (
            "eclamptic seizure 2 h postpartum",
            "eclampsia",
            "?eclampsia, fitting on the ward",
            "postpartum eclampsia, MgSO4 started",
            "r/o eclampsia",
        ),
        "negated": (
            "no eclampsia",
            "eclampsia excluded",
            "not eclamptic",
            "no features of eclampsia",
        ),
        "family": (
            "sister had eclampsia",
            "mother had eclampsia with her first pregnancy",
            "FHx eclampsia",
            "family history of eclampsia",
        ),
        "hypothetical": (
            "MgSO4 for eclampsia prophylaxis",
            "monitor for eclampsia",
            "return if signs of eclampsia",
            "risk of eclampsia explained",
        ),
        "historical": (
            "h/o eclampsia in 2019 pregnancy",
            "previous eclampsia",
            "history of eclampsia in first pregnancy",
            "PMHx: eclampsia 2018",
        ),
    },
    "pre-eclampsia": {
        "affirmed": (
            "pre-eclampsia with severe features",
            "preeclampsia, BP 165/112",
            "HELLP syndrome",
            "?pre-eclampsia, 2+ protein",
            "r/o preeclampsia",
        ),
        "negated": (
            "no pre-eclampsia",
            "PET bloods normal, pre-eclampsia excluded",
            "not pre-eclamptic",
            "denies symptoms of pre-eclampsia",
        ),
        "family": (
            "mother had pre-eclampsia",
            "FHx pre-eclampsia",
            "sister had HELLP",
            "family history of preeclampsia",
        ),
        "hypothetical": (
            "aspirin for pre-eclampsia prophylaxis",
            "monitor for pre-eclampsia",
            "at risk of preeclampsia, aspirin 150 mg",
            "call if symptoms of pre-eclampsia",
        ),
        "historical": (
            "h/o pre-eclampsia in last pregnancy",
            "previous HELLP 2021",
            "PMHx: preeclampsia",
            "history of pre-eclampsia, delivered 34/40",
        ),
    },
    "focal-neurological-deficit": {
        "affirmed": (
            "new left arm weakness",
            "slurred speech and facial droop",
            "blurred vision since yesterday",
            "?CVA, R sided weakness",
            "diplopia on lateral gaze",
            "partner noticed slurred speech this morning",
        ),
        "negated": (
            "no focal neurological deficit",
            "denies weakness, numbness or vision changes",
            "no diplopia",
            "no facial droop",
        ),
        "family": (
            "mother had a stroke at 50",
            "FHx CVA",
            "father with TIA",
            "family history of stroke",
        ),
        "hypothetical": (
            "return if weakness or numbness",
            "call if vision changes develop",
            "seek urgent help if slurred speech",
            "monitor for focal neurological deficit",
        ),
        "historical": (
            "h/o TIA 2018",
            "previous stroke 2015",
            "history of Bell's palsy",
            "PMHx: CVA with left-sided weakness, resolved",
        ),
    },
    "subdural-haematoma": {
        "affirmed": (
            "subdural haematoma on CT",
            "acute SDH",
            "r/o subdural",
            "?subdural after LP",
            "chronic subdural hematoma, L",
        ),
        "negated": (
            "no subdural",
            "no SDH on CT",
            "subdural excluded",
            "CT: no subdural collection",
        ),
        "family": (
            "father had a subdural",
            "FHx SDH",
            "mother with subdural haematoma after a fall",
            "family history of subdural haemorrhage",
        ),
        "hypothetical": (
            "risk of subdural haematoma explained",
            "monitor for subdural",
            "rescan if concern for subdural",
            "watch for signs of a subdural",
        ),
        "historical": (
            "h/o subdural 2016",
            "previous SDH, evacuated 2020",
            "history of chronic subdural",
            "PMHx: subdural haematoma after fall 2017",
        ),
    },
    "meningitis": {
        "affirmed": (
            "meningitis",
            "r/o meningitis",
            "?bacterial meningitis",
            "viral meningitis, LP today",
            "concern for meningoencephalitis",
        ),
        "negated": (
            "no meningitis",
            "meningitis excluded on LP",
            "denies symptoms of meningitis",
            "CSF clear, not meningitis",
        ),
        "family": (
            "mother had meningitis",
            "FHx meningitis",
            "brother died of meningococcal disease",
            "sister treated for meningitis last year",
        ),
        "hypothetical": (
            "return if symptoms of meningitis",
            "meningitis warning signs given",
            "monitor for meningitis",
            "call if signs of meningitis develop",
        ),
        "historical": (
            "h/o meningitis 2015",
            "meningitis as a child",
            "previous viral meningitis",
            "history of meningococcal meningitis",
        ),
    },
    "venous-sinus-thrombosis": {
        "affirmed": (
            "cerebral venous sinus thrombosis",
            "CVST on MRV",
            "?CVT postpartum",
            "r/o venous sinus thrombosis",
            "superior sagittal sinus thrombosis",
        ),
        "negated": (
            "no CVST",
            "venous sinus thrombosis excluded",
            "no sinus thrombosis on MRV",
            "denies h/a, no CVT",
        ),
        "family": (
            "mother had a cerebral venous thrombosis",
            "FHx CVST",
            "sister had sinus thrombosis on the pill",
            "family history of cerebral venous sinus thrombosis",
        ),
        "hypothetical": (
            "risk of venous sinus thrombosis discussed",
            "monitor for sinus thrombosis",
            "return if signs of CVT",
            "consider CVST if headache persists",
        ),
        "historical": (
            "h/o CVST 2017 on warfarin",
            "previous sinus thrombosis",
            "history of cerebral venous thrombosis",
            "PMHx: CVT in 2019 pregnancy",
        ),
    },
    "subarachnoid-haemorrhage-or-rcvs": {
        "affirmed": (
            "SAH on CT",
            "r/o SAH",
            "?subarachnoid haemorrhage",
            "xanthochromia on LP",
            "concern for RCVS",
            "husband found her collapsed, ?SAH",
        ),
        "negated": (
            "no SAH",
            "SAH ruled out",
            "CT: no subarachnoid blood",
            "no xanthochromia",
        ),
        "family": (
            "FHx SAH",
            "mother died of a subarachnoid haemorrhage",
            "family history of SAH",
            "sister had a ruptured aneurysm",
        ),
        "hypothetical": (
            "risk of SAH discussed",
            "call if signs of subarachnoid haemorrhage",
            "monitor for SAH",
            "seek help if symptoms of SAH",
        ),
        "historical": (
            "previous SAH in 2010",
            "h/o SAH, clipped 2012",
            "history of aneurysmal SAH",
            "PMHx: subarachnoid haemorrhage 2005",
        ),
    },
    "intracranial-haemorrhage": {
        "affirmed": (
            "intracerebral haemorrhage on CT",
            "r/o bleed",
            "?ICH",
            "IVH on CT",
            "acute brain bleed",
        ),
        "negated": (
            "no intracranial haemorrhage",
            "CT: no ICH",
            "no bleed on CT",
            "intracranial hemorrhage excluded",
        ),
        "family": (
            "father had a brain bleed",
            "FHx ICH",
            "mother died of an intracerebral haemorrhage",
            "family history of haemorrhagic stroke",
        ),
        "hypothetical": (
            "risk of intracranial haemorrhage on anticoagulation discussed",
            "monitor for ICH",
            "return if signs of a brain bleed",
            "call if symptoms of intracranial bleed",
        ),
        "historical": (
            "h/o ICH 2018",
            "previous intracerebral haemorrhage",
            "history of brain bleed",
            "PMHx: haemorrhagic stroke 2016",
        ),
    },
    "posterior-reversible-encephalopathy": {
        "affirmed": (
            "PRES on MRI",
            "?PRES postpartum",
            "posterior reversible encephalopathy syndrome",
            "r/o PRES",
            "RPLS",
        ),
        "negated": (
            "no PRES",
            "PRES excluded",
            "MRI: no features of PRES",
            "not PRES",
        ),
        "family": (
            "mother had PRES",
            "FHx PRES",
            "sister had posterior reversible encephalopathy",
            "family history of PRES",
        ),
        "hypothetical": (
            "risk of PRES explained",
            "monitor for PRES",
            "call if symptoms of PRES",
            "MRI if PRES suspected",
        ),
        "historical": (
            "h/o PRES 2020",
            "previous PRES in pregnancy",
            "history of posterior reversible encephalopathy",
            "PMHx: PRES 2018, resolved",
        ),
    },
    "raised-intracranial-pressure": {
        "affirmed": (
            "papilloedema on fundoscopy",
            "raised ICP",
            "?raised intracranial pressure",
            "bilateral papilledema",
            "optic disc swelling",
        ),
        "negated": (
            "no papilloedema",
            "fundi normal, no papilledema",
            "no signs of raised ICP",
            "no optic disc swelling",
        ),
        "family": (
            "mother has IIH with papilloedema",
            "FHx raised intracranial pressure",
            "sister with papilledema",
            "family history of raised ICP",
        ),
        "hypothetical": (
            "return if signs of raised ICP",
            "monitor for raised intracranial pressure",
            "risk of papilloedema discussed",
            "fundoscopy if raised ICP suspected",
        ),
        "historical": (
            "h/o papilloedema 2019",
            "previous raised ICP, shunt 2015",
            "history of raised intracranial pressure",
            "PMHx: papilledema 2018",
        ),
    },
    "neuraxial-abscess": {
        "affirmed": (
            "epidural abscess",
            "r/o epidural abscess",
            "?spinal abscess after epidural",
            "brain abscess on MRI",
            "subdural empyema",
        ),
        "negated": (
            "no epidural abscess",
            "epidural abscess excluded",
            "MRI: no spinal abscess",
            "no collection or epidural abscess",
        ),
        "family": (
            "father had a brain abscess",
            "FHx epidural abscess",
            "brother with spinal abscess",
            "family history of brain abscess",
        ),
        "hypothetical": (
            "return if fever or back pain, risk of epidural abscess",
            "monitor for epidural abscess",
            "risk of epidural abscess explained",
            "call if signs of spinal abscess",
        ),
        "historical": (
            "h/o epidural abscess 2016",
            "previous brain abscess",
            "history of spinal abscess",
            "PMHx: epidural abscess 2014, drained",
        ),
    },
    "altered-mental-status": {
        "affirmed": (
            "confused since this morning",
            "GCS 12",
            "obtunded on arrival",
            "AMS",
            "?delirium, disoriented to time",
            "husband says she has been confused since last night",
            "PMHx HTN presents with confusion",
            "per daughter, more confused today",
        ),
        "negated": (
            "no confusion",
            "not confused",
            "denies confusion",
            "no altered mental status",
        ),
        "family": (
            "father has delirium in hospital",
            "FHx encephalopathy",
            "mother confused with her dementia",
            "grandmother delirious after surgery",
        ),
        "hypothetical": (
            "return if confused or drowsy",
            "call if confusion develops",
            "monitor GCS, escalate if drowsy",
            "seek help if she becomes drowsy",
        ),
        "historical": (
            "h/o delirium after GA 2019",
            "previous encephalopathy",
            "history of confusion post-op",
            "PMHx: hepatic encephalopathy 2017",
        ),
    },
    "thunderclap-headache": {
        "affirmed": (
            "thunderclap headache",
            "worst headache of her life",
            "sudden onset severe headache",
            "?thunderclap, peaked within 1 min",
            "headache came on suddenly at the gym",
            "husband reports sudden onset severe headache",
            "hx of migraine presents with worst headache of her life",
        ),
        "negated": (
            "no thunderclap headache",
            "not thunderclap",
            "denies sudden onset headache",
            "not the worst headache of her life",
        ),
        "family": (
            "mother had a thunderclap headache before her SAH",
            "FHx thunderclap headache",
            "sister gets thunderclap headaches",
            "family history of thunderclap headache",
        ),
        "hypothetical": (
            "return if thunderclap headache",
            "seek urgent help if sudden severe headache",
            "call if worst headache of her life",
            "thunderclap headache warning signs explained",
        ),
        "historical": (
            "h/o thunderclap headache 2019, CT/LP neg",
            "previous thunderclap headache",
            "history of thunderclap headache with RCVS",
            "PMHx: thunderclap headache 2021",
        ),
    },
}


def phrases(corpus: Corpus = CORPUS) -> Iterator[tuple[str, str, str]]:
    """Every (concept key, context, phrase) of the corpus, in order."""
    for concept, by_context in corpus.items():
        for context in CONTEXTS:
            for phrase in by_context.get(context, ()):
                yield concept, context, phrase


def expected_current(context: str) -> bool:
    """Whether a phrase of this context is the patient's current finding: only an affirmed one."""
    return context == "affirmed"
