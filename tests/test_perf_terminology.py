"""terminology.concept_key builds the usual keys (one or two coding objects) at once: the same key as
its general definition on every concept of the fixtures and the large patient, and on generated ones
(codings that are not objects, lists and objects of other types, any number of codings)."""

from __future__ import annotations

from collections import UserDict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.knowledge.terminology import concept_key
from tests.test_perf_matching import all_concepts


def _definition(concept: Any) -> tuple[object, ...] | None:
    if not isinstance(concept, dict):
        return None
    key = [concept.get("text")]
    coding = concept.get("coding")
    if isinstance(coding, list):
        for c in coding:
            if isinstance(c, dict):
                key += (c.get("system"), c.get("code"), c.get("display"))
    return tuple(key)


class _Dict(dict[str, Any]):
    pass


class _List(list[Any]):
    pass


VALUES = st.none() | st.sampled_from(["", "x", "I10", "http://snomed.info/sct"]) | st.integers()
CODINGS = st.dictionaries(st.sampled_from(["system", "code", "display", "x"]), VALUES, max_size=4)
ITEMS = CODINGS | CODINGS.map(_Dict) | VALUES | st.lists(VALUES, max_size=2)
CONCEPTS = st.fixed_dictionaries(
    {},
    optional={
        "text": VALUES,
        "coding": st.lists(ITEMS, max_size=4) | st.lists(ITEMS, max_size=3).map(_List) | VALUES,
    },
)


def test_the_usual_keys_are_the_definitions_on_every_concept() -> None:
    concepts = all_concepts()
    assert len(concepts) > 300
    for concept in concepts:
        assert concept_key(concept) == _definition(concept), concept


@pytest.mark.slow
@settings(max_examples=2000, deadline=None)
@given(CONCEPTS | CONCEPTS.map(_Dict) | VALUES)
def test_a_generated_concepts_key_is_its_definition(concept: Any) -> None:
    assert concept_key(concept) == _definition(concept)


def test_a_mapping_that_is_no_dict_has_no_key() -> None:
    assert concept_key(UserDict({"text": "x"})) is None
