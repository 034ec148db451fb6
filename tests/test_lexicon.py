"""Lexicons from terminology, not from memory (issue 24, item 2): every title and inclusion term of
every ICD-10-CM code under a red-flag concept's codes (the CMS release the service ships) is recognised
as text, by the concept's own words or by a phrase lexicon.yaml read from the release; lexicon.yaml is
what tools/build_lexicon.py builds. Reading the release takes seconds: the slow tier."""

from __future__ import annotations

import pytest

from cds_service.config import HOOKS_DIR
from cds_service.knowledge import Knowledge
from cds_service.knowledge.terminology import match
from tools.build_lexicon import (
    build,
    dump,
    head,
    icd_codes,
    normalised,
    red_flag_concepts,
    titles_of,
)

pytestmark = pytest.mark.slow


def test_lexicon_yaml_is_what_the_builder_makes() -> None:
    path = HOOKS_DIR / "pdph_imaging" / "lexicon.yaml"
    assert path.read_text(encoding="utf-8") == dump(build()), (
        "run .venv/bin/python tools/build_lexicon.py --write"
    )


def test_every_icd10cm_title_of_a_red_flag_is_recognised(
    knowledge: Knowledge, capsys: pytest.CaptureFixture[str]
) -> None:
    lexicon = knowledge.lexicon
    assert lexicon is not None
    missed: list[str] = []
    rows: list[str] = []
    total = 0
    for key in red_flag_concepts(knowledge):
        codes = icd_codes(knowledge, key)
        if not codes:
            continue
        entry = lexicon.concepts.get(key)
        excluded = set(entry.exclude) if entry else set()
        titles = titles_of(codes)
        total += len(titles)
        skipped = 0
        for title in titles:
            if head(title) in excluded:
                skipped += 1
            elif key not in match({"text": normalised(title)}, knowledge.findings):
                missed.append(f"{key}: {title!r}")
        own = len(knowledge.valuesets.findings[key].text) - (1 if entry and entry.phrases else 0)
        phrases = len(entry.phrases) if entry else 0
        rows.append(
            f"  {key}: {len(titles)} titles, {own} own phrasings, {phrases} from ICD-10-CM, "
            f"{skipped} titles excluded"
        )
    with capsys.disabled():
        print(f"\nICD-10-CM titles read: {total} ({knowledge.icd10cm_release})")
        print("\n".join(rows))
    assert missed == []
