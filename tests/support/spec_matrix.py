"""The SPEC §2 rating matrix, written out once, independently of hooks/pdph_imaging/rules.yaml: every test
that needs a rating reads it here (a rating cell changed in YAML is checked against this one table)."""

from __future__ import annotations

UA, MBA, UNA, NR = (
    "usually-appropriate",
    "may-be-appropriate",
    "usually-not-appropriate",
    "not-rated",
)
MATRIX = {
    # study type: ratings in the order of Scenario
    # (acute, red flags, persistent, sih, post-patch, AMS, thunderclap, sih after initial imaging)
    "ct-head-without": (UNA, UA, UNA, NR, NR, NR, UA, NR),
    "cta-head": (UNA, NR, NR, NR, NR, NR, MBA, NR),
    "mri-head-without-and-with": (UNA, UA, UNA, UA, NR, NR, UNA, UA),
    "mri-head-without": (UNA, UA, UNA, MBA, NR, NR, UNA, NR),
    "mri-head-with": (UNA, MBA, UNA, MBA, NR, NR, UNA, NR),
    "mri-head-unspecified": (UNA, MBA, UNA, MBA, NR, NR, UNA, NR),
    "mri-spine-cervical": (UNA, NR, UNA, UA, NR, UA, NR, UA),
    "mri-spine-lumbar": (UNA, NR, UNA, UA, NR, UA, NR, UA),
    "mri-spine-complete": (UNA, NR, UNA, UA, NR, UA, NR, UA),
    "ct-myelography": (UNA, NR, UNA, UNA, UNA, NR, NR, MBA),
    "dsm-complete-spine": (UNA, NR, UA, UNA, UNA, NR, NR, UA),
    "ct-head-with": (UNA, NR, NR, NR, NR, NR, NR, NR),
    "ct-spine": (UNA, NR, NR, NR, NR, NR, NR, NR),
    "myelography": (UNA, NR, NR, NR, NR, NR, NR, NR),
    "other-head-spine": (UNA, NR, NR, NR, NR, NR, NR, NR),
    "ctv-head": (UNA, NR, NR, NR, NR, NR, NR, NR),
    "mra-head": (UNA, NR, NR, NR, NR, NR, NR, NR),
    "mrv-head": (UNA, NR, NR, NR, NR, NR, NR, NR),
    "mr-cisternography": (UNA, NR, NR, NR, NR, NR, NR, NR),
    "ct-cisternography": (UNA, NR, NR, NR, NR, NR, NR, NR),
    "nm-cisternography": (UNA, NR, NR, NR, NR, NR, NR, NR),
}
