"""The seeds' red flags are the floor of what the service recognises (SPEC §2): every red flag and example
the two clinical source articles name, read from the articles themselves, is recognised in words as a
red flag (or altered mental status), alone and in a clinician's sentence, and its negation is not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cds_service.knowledge import Knowledge
from cds_service.knowledge.terminology import match

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
# The seeds list red flags in the sentences that speak of red flags, atypical or alarming symptoms,
# escalation or serious complications: after one of these openers, up to the end of the sentence.
_ABOUT_RED_FLAGS = re.compile(
    r"red flag|atypical|alarming|escalate|serious complication|complications like", re.IGNORECASE
)
_LIST_OPENER = re.compile(
    r"\b(?:such as|include|presents with|develops|complications? like)\s+", re.IGNORECASE
)
_SPLIT = re.compile(r",|;|\(|\)|\beg\b|\bor\b|\band\b", re.IGNORECASE)
_LEADING = re.compile(r"^(?:a|an|any|the|new|these|which)\s+", re.IGNORECASE)
# What follows a list in the same sentence ("which are rare but serious complications of...").
_AFTER_LIST = re.compile(r"\b(?:which|this|these|the diagnosis|requires?)\b.*$", re.IGNORECASE)


def seed_red_flag_phrases() -> list[str]:
    phrases: list[str] = []
    for path in sorted(SEEDS.glob("*.txt")):
        text = path.read_text(encoding="utf-8").replace("e.g.", "eg")
        for sentence in re.split(r"(?<=[.?!])\s+|\n", text):
            openers = list(_LIST_OPENER.finditer(sentence))
            if not _ABOUT_RED_FLAGS.search(sentence) or not openers:
                continue
            items = _AFTER_LIST.sub("", sentence[openers[-1].end() :].rstrip(".?! "))
            if "," not in items:
                continue  # "develops any atypical or alarming symptoms": no list
            for item in _SPLIT.split(items):
                phrase = item.strip(" ,.’‘'\"")
                while _LEADING.match(phrase):
                    phrase = _LEADING.sub("", phrase)
                if len(phrase) > 2:
                    phrases.append(phrase)
    return list(dict.fromkeys(phrases))


pytestmark = pytest.mark.skipif(
    not SEEDS.is_dir(), reason=f"the seed articles are not beside the checkout ({SEEDS})"
)


def _flags(knowledge: Knowledge) -> frozenset[str]:
    groups = knowledge.finding_groups
    return groups["red_flags"] | groups["altered_mental_status"]


def test_the_seeds_name_the_red_flags_we_expect() -> None:
    """The extraction itself: if the seeds change, this says what they now list."""
    phrases = {p.lower() for p in seed_red_flag_phrases()}
    expected = {
        "fever",
        "nuchal rigidity",
        "neck stiffness",
        "altered mental status",
        "obtundation",
        "seizures",
        "focal neurologic deficits",
        "weakness",
        "numbness",
        "vision changes",
        "declining level of consciousness",
        "signs of systemic infection",
        "meningitis",
        "subdural hematoma",
        "cerebral venous sinus thrombosis",
    }
    assert expected <= phrases, sorted(expected - phrases)


@pytest.mark.parametrize("phrase", seed_red_flag_phrases() if SEEDS.is_dir() else [])
def test_each_seed_red_flag_is_recognised(phrase: str, knowledge: Knowledge) -> None:
    flags = _flags(knowledge)
    for text in (
        phrase,
        f"post LP headache with new {phrase}",
        f"Headache day 2 after epidural; {phrase}",
    ):
        assert match({"text": text}, knowledge.findings) & flags, text
    for negated in (f"no {phrase}", f"denies {phrase}"):
        assert not match({"text": negated}, knowledge.findings) & flags, negated
