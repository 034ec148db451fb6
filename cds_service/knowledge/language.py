"""Reading clinicians' words: which mentions of a concept are affirmed, which are negated, and which
words of a text no rule accounts for. The cue lists are data (hooks/<knowledge>/valuesets.yaml,
`language`); this module only applies them.

Negation scope, in the manner of NegEx (Chapman et al., 2001): a cue before a mention ("no",
"denies", "negative for") negates it only within the same clause. A clause ends at sentence
punctuation or a termination word ("but", "however"...), and at a comma unless the clause goes on as a
list closed by "or"/"nor" ("denies fever, neck stiffness or photophobia"). So "no fever, confused"
affirms the confusion: a negated symptom never hides a later, affirmed one. A cue right after a
mention ("fever: absent", "SAH ruled out") negates it too. Errors are asymmetric: where the scope is
unclear the mention counts as affirmed, because a red flag read too often adds a scan, while one
missed can remove a needed one."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

WORD = re.compile(r"[A-Za-z][A-Za-z'’]*")


@lru_cache(maxsize=8192)
def pattern(source: str) -> re.Pattern[str]:
    """A case-insensitive expression of the knowledge, compiled once per process: the same texts are
    compiled again by every load of a knowledge folder (a site's copy, each test's), and there are
    more of them than the `re` module's own cache keeps."""
    return re.compile(source, re.IGNORECASE)


_MAX_WORDS_IN_SCOPE = 8
# Characters either side of a mention within which its clause is read: far more than the words a
# negation reaches (_MAX_WORDS_IN_SCOPE), far less than a radiology report.
_CLAUSE_REACH = 400


def _alternation(patterns: Iterable[str]) -> str:
    return "|".join(f"(?:{p})" for p in patterns)


@dataclass(frozen=True)
class Language:
    """Compiled cue lists: negation before and after a mention, clause terminators, filler words."""

    before: re.Pattern[str]
    after: re.Pattern[str]
    terminator: re.Pattern[str]
    list_closer: re.Pattern[str]
    filler: frozenset[str]
    # Words of a standard display that say nothing clinical: a SNOMED CT fully specified name's
    # semantic tag ("Headache (finding)", as the CDS Hooks sandbox sends it).
    accounted: re.Pattern[str] | None = None

    @classmethod
    def compile(
        cls,
        before: list[str],
        after: list[str],
        terminators: list[str],
        filler: list[str],
        accounted: list[str] = (),  # type: ignore[assignment]
    ) -> Language:
        return cls(
            before=pattern(rf"(?<![A-Za-z])(?:{_alternation(before)})(?![A-Za-z])"),
            after=pattern(rf"^[\s:=\-–—(]*(?:{_alternation(after)})(?![A-Za-z])"),
            terminator=pattern(_alternation(terminators)),
            list_closer=pattern(r"\b(or|nor)\b"),
            filler=frozenset(w.lower() for w in filler),
            accounted=pattern(_alternation(accounted)) if accounted else None,
        )

    def clause_bounds(self, text: str, start: int, end: int) -> tuple[int, int]:
        """Start and end of the clause holding text[start:end] (commas not counted), looked for
        within _CLAUSE_REACH characters either side: a cue farther away is beyond the negation's
        scope anyway, and a long report is read in linear time, not quadratic."""
        lower = max(0, start - _CLAUSE_REACH)
        clause_start = lower
        for found in self.terminator.finditer(text, lower, start):
            clause_start = found.end()
        upper = min(len(text), end + _CLAUSE_REACH)
        following = self.terminator.search(text, end, upper)
        return clause_start, following.start() if following else upper

    def is_negated(self, text: str, start: int, end: int) -> bool:
        while end < len(text) and text[end].isalpha():  # "eclamp|sia excluded": to the word's end
            end += 1
        clause_start, clause_end = self.clause_bounds(text, start, end)
        after = text[end:clause_end].split(",", 1)[0]
        if self.after.search(after):
            return True
        cues = list(self.before.finditer(text, clause_start, start))
        if not cues:
            return False
        cue = cues[-1]
        between = text[cue.end() : start]
        if len(WORD.findall(between)) > _MAX_WORDS_IN_SCOPE:
            return False
        # "no fever, confused": the comma ended the negated clause, unless it is a list closed by
        # "or"/"nor", before this mention ("fever, neck stiffness or confusion") or after it.
        return (
            "," not in between
            or bool(self.list_closer.search(between))
            or bool(self.list_closer.search(text, start, clause_end))
        )

    def cue_spans(self, text: str) -> list[tuple[int, int]]:
        """Where the negation cues are: words accounted for when reading an order's reason."""
        return [m.span() for m in self.before.finditer(text)]

    def uninterpreted(self, text: str, accounted: list[tuple[int, int]]) -> list[str]:
        """Words of `text` outside every accounted span that are not filler words."""
        spans = accounted + self.cue_spans(text)
        if self.accounted is not None:
            spans += [m.span() for m in self.accounted.finditer(text)]
        spans.sort()
        left: list[str] = []
        for word in WORD.finditer(text):
            if any(word.start() < b and a < word.end() for a, b in spans):
                continue  # a word a recognised mention touches ("spinal an(a)esthe|sia")
            token = word.group().lower().strip("'’")
            if len(token) > 1 and token not in self.filler and token not in left:
                left.append(token)
        return left
