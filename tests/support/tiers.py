"""Which test modules a `-m` expression leaves out entirely, told without importing them.

A module of a slow tier declares its tier once, as `pytestmark = pytest.mark.<tier>` (or a list
starting with it). When the `-m` expression is false for every test carrying that mark, whatever
other marks the test has, importing the module would only be thrown away: the fast tier would pay
for Schemathesis, Hypothesis, Playwright and the modules' own start-up (seconds) to deselect them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

from _pytest.mark.expression import Expression

_TIER = re.compile(r"^pytestmark = \[?pytest\.mark\.(\w+)\b", re.MULTILINE)


@cache
def module_tier(path: Path) -> str | None:
    """The mark a test module puts on all its tests, read from its source."""
    found = _TIER.search(path.read_text(encoding="utf-8"))
    return found.group(1) if found else None


@cache
def never_selected(markexpr: str, mark: str) -> bool:
    """Whether `markexpr` is false for every test that has `mark`, whichever other marks it has:
    every assignment of the other names the expression reads is tried (the expression's names are
    few). An expression with keyword arguments is never judged: the module is imported."""
    expression = Expression.compile(markexpr)
    names: set[str] = set()
    unjudged = False

    def reader(assigned: frozenset[str]) -> Callable[..., bool]:
        def matcher(name: str, /, **kwargs: object) -> bool:
            nonlocal unjudged
            if kwargs:
                unjudged = True
            names.add(name)
            return name == mark or name in assigned

        return matcher

    tried: set[frozenset[str]] = set()
    while True:
        others = sorted(names - {mark})
        untried = [
            frozenset(chosen)
            for size in range(len(others) + 1)
            for chosen in itertools.combinations(others, size)
            if frozenset(chosen) not in tried
        ]
        if not untried:
            return not unjudged
        for assigned in untried:
            tried.add(assigned)
            if expression.evaluate(reader(assigned)) or unjudged:
                return False
