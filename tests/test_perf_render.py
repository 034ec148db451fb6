"""What the renderer prepares once or builds more cheaply gives what it built before: the card parts
prepared when the knowledge loads are the knowledge's, the ids are version 4 UUIDs as uuid4 writes
them, and without_empty is the recursive definition it replaced."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.knowledge import Knowledge
from cds_service.pipeline.config import new_uuid
from cds_service.wire import Coding, without_empty


def test_new_ids_are_random_version_4_uuids_in_canonical_text() -> None:
    ids = [new_uuid() for _ in range(4000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
    # Every variant digit and every other hex digit occurs: nothing but the fixed bits is fixed.
    assert {text[19] for text in ids} == set("89ab")
    assert {text[0] for text in ids} == set("0123456789abcdef")


_EMPTY = object()


def _reference(value: Any) -> Any:
    """The definition it replaced: a copy without nulls and empty strings, lists or objects."""
    if isinstance(value, dict):
        return {k: kept for k, v in value.items() if (kept := _cleaned(v)) is not _EMPTY}
    if isinstance(value, list):
        return [kept for v in value if (kept := _cleaned(v)) is not _EMPTY]
    return value


def _cleaned(value: Any) -> Any:
    if isinstance(value, dict | list):
        value = _reference(value)
        return value if value else _EMPTY
    return _EMPTY if value is None or value == "" else value


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from(["", "x", " ", "0"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(JSON)
def test_without_empty_is_its_definition(value: Any) -> None:
    assert without_empty(value) == _reference(value)


def test_card_parts_are_the_knowledges(knowledge: Knowledge) -> None:
    rules, parts = knowledge.rules, knowledge.card_parts
    assert set(parts.override_reasons) == set(rules.scenarios)
    for name, scenario in rules.scenarios.items():
        assert list(parts.override_reasons[name]) == [
            Coding(
                system=rules.override_reason_system,
                code=code,
                display=rules.override_reasons[code],
            )
            for code in scenario.override_reasons
        ]
    category = knowledge.imaging.order_category
    for name, orderable in knowledge.imaging.orderables.items():
        prepared = parts.orderables[name]
        assert prepared.text == orderable.code.text
        assert [dict(c) for c in prepared.codings] == [
            {"system": knowledge.coding_system(c.system), "code": c.code}
            | ({"display": c.display} if c.display else {})
            for c in orderable.code.coding
        ]
        expected = {
            "system": knowledge.coding_system(category.system),
            "code": category.code,
            "display": category.display or category.code,
        }
        assert (dict(prepared.category) if prepared.category else None) == (
            expected if orderable.imaging else None
        )
