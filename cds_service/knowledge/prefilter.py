"""Which concepts a text may mention, from the literal words their patterns cannot match without:
asked before any pattern is tried, so a text no concept can match (most of a record's) is not run
through the joined expression of every phrase (ConceptIndex), which costs about 12 us a character.

Exact, never a guess: a concept is left out only when none of its patterns can match the text.
- For each pattern, `required` reads its parsed form (re._parser) and returns words, one of which
  every match contains: the literal characters of a part the match cannot skip (the pattern's own
  sequence, a group, a repeat at least once; for alternatives, one word of each). Anything else
  (classes, optional parts, look-arounds, back-references) gives no word, never a wrong one; a
  pattern with no such word is always tried.
- Case-insensitive matching is matched by `fold`: the engine compares a text character with a
  pattern's by lowering both with its own table (_sre.unicode_tolower, which maps the Kelvin sign
  to k) and by the few lower-case letters it counts as one (re._casefix: s and long s, i and dotless
  i, mu and micro...); `fold` maps every character to one representative of that class, so a word
  the match contains is in the folded text whatever its case. A case-sensitive part only matches
  equal characters, which fold alike too.
tests/test_prefilter.py checks the folding against the engine and that the screened answers are the
unscreened ones over the lexicon, the repository's texts and generated variations."""

from __future__ import annotations

import _sre
import re
from collections.abc import Iterable, Sequence
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from re._casefix import _EXTRA_CASES

Words = frozenset[str]


def _representative(code: int) -> int:
    """The code point a text character is compared by: lowered as the engine lowers, then the
    smallest of the lower-case letters the engine counts as that one."""
    lower: int = _sre.unicode_tolower(code)
    return int(min((lower, *_EXTRA_CASES.get(lower, ()))))


def _fold_table(end: int) -> dict[int, int]:
    """Every code point below `end` that is not its own representative: those the engine lowers to
    another, and those it counts as another lower-case letter."""
    lower = _sre.unicode_tolower
    candidates = {code for code in range(end) if lower(code) != code}
    candidates |= {code for code in _EXTRA_CASES if code < end}
    return {code: rep for code in candidates if (rep := _representative(code)) != code}


# About 1,500 code points (6 ms to find); above the table's end no letter has a case, and each
# character there is asked in turn, should one ever fold.
_TABLE_END = 0x20000
_FOLD = _fold_table(_TABLE_END)
_BEYOND_TABLE = re.compile(f"[{chr(_TABLE_END)}-{chr(0x10FFFF)}]")


def fold(text: str) -> str:
    """`text` with every character replaced by its representative (the same length)."""
    if _BEYOND_TABLE.search(text) is None:
        return text.translate(_FOLD)
    return "".join(chr(_representative(ord(c))) for c in text)


_REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", sre.MAX_REPEAT)}


def required(compiled: re.Pattern[str]) -> Words | None:
    """Folded words one of which every match of `compiled` contains, or None when none is known."""
    return _sequence(_parser.parse(compiled.pattern, compiled.flags))


def _sequence(items: Iterable[tuple[object, object]]) -> Words | None:
    best: Words | None = None
    run: list[str] = []
    for op, av in items:
        if op is sre.LITERAL:
            run.append(chr(av))  # type: ignore[arg-type]
            continue
        best = _better(best, frozenset({"".join(run)}) if run else None)
        run = []
        best = _better(best, _item(op, av))
    return _better(best, frozenset({"".join(run)}) if run else None)


def _item(op: object, av: object) -> Words | None:
    if op is sre.SUBPATTERN:
        return _sequence(av[3])  # type: ignore[index]
    if op is getattr(sre, "ATOMIC_GROUP", None):
        return _sequence(av)  # type: ignore[arg-type]
    if op in _REPEATS:
        least, _, body = av  # type: ignore[misc]
        return _sequence(body) if least >= 1 else None  # type: ignore[has-type]
    if op is sre.BRANCH:
        branches = [_sequence(b) for b in av[1]]  # type: ignore[index]
        if any(b is None for b in branches):
            return None
        return frozenset().union(*branches)  # type: ignore[arg-type]
    return None  # a class, any character, an anchor, a look-around, a back-reference...


def _better(a: Words | None, b: Words | None) -> Words | None:
    """The more selective of two requirements: the one whose shortest word is longer."""
    b = None if b is None else frozenset(fold(word) for word in b)
    if b is None or "" in b:
        return a
    if a is None:
        return b
    return b if (min(map(len, b)), -len(b)) > (min(map(len, a)), -len(a)) else a


class Prefilter:
    """For a list of compiled patterns, which of them may match a text (their positions in the
    list). Words are looked up by their first two folded characters at each position of the folded
    text (single characters by themselves), so a text costs a step per character, not per word."""

    def __init__(self, patterns: Sequence[re.Pattern[str]]) -> None:
        by_word: dict[str, set[int]] = {}
        always: set[int] = set()
        for at, compiled in enumerate(patterns):
            words = required(compiled)
            if words is None:
                always.add(at)
            for word in words or ():
                by_word.setdefault(word, set()).add(at)
        self.always = frozenset(always)
        self._pairs: dict[str, list[tuple[str, frozenset[int]]]] = {}
        self._singles: dict[str, frozenset[int]] = {}
        for word, found in by_word.items():
            if len(word) == 1:
                self._singles[word] = frozenset(found)
            else:
                self._pairs.setdefault(word[:2], []).append((word, frozenset(found)))

    def candidates(self, text: str) -> set[int]:
        """The positions of the patterns that may match `text`: every other one cannot."""
        folded = fold(text)
        found = set(self.always)
        pairs, singles = self._pairs, self._singles
        for at in range(len(folded)):
            if singles and (hit := singles.get(folded[at])) is not None:
                found |= hit
            for word, hit in pairs.get(folded[at : at + 2], ()):
                if folded.startswith(word, at):
                    found |= hit
        return found
