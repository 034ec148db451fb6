"""Whose finding, and when (SPEC §2): our reading of clinicians' words (cds_service/knowledge/
language.py, cue lists in hooks/pdph_imaging/valuesets.yaml) side by side with medSpaCy's ConText
on the phrase corpus (tools/context_corpus.py). docs/context-evaluation.md holds the results.

Ours: a phrase is the patient's current finding when the concept's key is in
`terminology.match({"text": phrase}, k.findings)`. medSpaCy: a blank English pipeline
(`medspacy.load()`: its tokenizer, PyRuSH sentences, TargetMatcher, ConText with its packaged
English rules), one TargetRule per concept and text pattern of our knowledge (the same regular
expressions, so both systems find the same mentions and differ only in reading their context); a
mention counts when ConText marks it neither negated, family, hypothetical nor historical (an
uncertain one, "r/o SAH", counts: a red flag in question is a red flag).

medSpaCy is not a dependency of the service: it lives in a virtual environment of its own, with this
project installed editable so that both read the current tree:

    python3 -m venv /tmp/medspacy-venv
    /tmp/medspacy-venv/bin/pip install medspacy -e .
    /tmp/medspacy-venv/bin/python tools/compare_context.py [--json results.json] [--markdown]

Without medSpaCy (the project's own .venv) it reports our side alone."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cds_service.knowledge import Knowledge  # noqa: E402
from cds_service.knowledge.matching import ConceptIndex  # noqa: E402
from cds_service.knowledge.registry import load_services  # noqa: E402
from cds_service.knowledge.terminology import match  # noqa: E402
from tools.context_corpus import CONTEXTS, CORPUS, expected_current, phrases  # noqa: E402

# ConText's span attributes that make a mention something other than the patient's current finding
# (medSpaCy's DEFAULT_ATTRIBUTES; `is_uncertain` is not among them: a suspected red flag counts).
NOT_CURRENT = ("is_negated", "is_family", "is_hypothetical", "is_historical")
ROUNDS = 5  # cold passes, each on a fresh index or memo
MEMO_REPEATS = 50  # memoised passes over the corpus

Key = tuple[str, str, str]  # concept, context, phrase


@dataclass
class SystemResult:
    """One system's reading of the corpus: whether each phrase is the concept's current finding,
    whether the concept is mentioned at all, and the cost per call."""

    name: str
    current: dict[Key, bool] = field(default_factory=dict)
    mentioned: dict[Key, bool] = field(default_factory=dict)
    first_call_us: float = 0.0
    memoised_us: float = 0.0
    load_s: float = 0.0

    def correct(self, key: Key) -> bool:
        return self.current[key] == expected_current(key[1])

    def misses(self) -> list[Key]:
        return [key for key in self.current if not self.correct(key)]


def load_knowledge() -> Knowledge:
    """The knowledge of the first service declared under this checkout's hooks/ (as
    tests/conftest.py loads it; cds_service.config is not imported: only the knowledge is read)."""
    return next(iter(load_services(ROOT / "hooks").values())).knowledge


def red_flag_keys(k: Knowledge) -> list[str]:
    """The concepts the corpus must cover: red flags, altered mental status and thunderclap."""
    groups = ("red_flags", "altered_mental_status", "thunderclap")
    return sorted({key for g in groups for key in k.finding_groups.get(g, frozenset())})


def _mean_us(calls: Callable[[str], object], texts: Iterable[str]) -> float:
    durations: list[int] = []
    for text in texts:
        start = time.perf_counter_ns()
        calls(text)
        durations.append(time.perf_counter_ns() - start)
    return statistics.fmean(durations) / 1000


def _reader(index: ConceptIndex) -> Callable[[str], object]:
    """The service's call on one text: a CodeableConcept's words matched against the findings."""
    return lambda text: match({"text": text}, index)


def run_ours(k: Knowledge) -> SystemResult:
    result = SystemResult("language.py")
    for concept, context, phrase in phrases():
        key = (concept, context, phrase)
        result.current[key] = concept in match({"text": phrase}, k.findings)
        result.mentioned[key] = bool(k.findings.spans_for_text(phrase).get(concept))
    texts = sorted({phrase for _, _, phrase in phrases()})
    firsts: list[float] = []
    memos: list[float] = []
    for _ in range(ROUNDS):
        # A fresh index has empty memos: every text's first call (the screen, then every finding's
        # patterns and the cue lists), as the service pays it once per distinct text.
        read = _reader(ConceptIndex(dict(k.findings), k.systems))
        firsts.append(_mean_us(read, texts))
        memos.append(statistics.fmean(_mean_us(read, texts) for _ in range(MEMO_REPEATS)))
    result.first_call_us = statistics.median(firsts)
    result.memoised_us = statistics.median(memos)
    return result


def build_medspacy(k: Knowledge, concepts: list[str]) -> Any:
    """A medSpaCy pipeline with ConText and its packaged rules, targets from our text patterns."""
    import medspacy  # a separate venv: see the module docstring
    from loguru import logger
    from medspacy.ner import TargetRule

    # PyRuSH logs every token at DEBUG to stderr by default: silenced, or its cost would be timed.
    logger.disable("PyRuSH")

    nlp = medspacy.load()  # blank "en" model: tokenizer, PyRuSH, TargetMatcher, ConText
    matcher = nlp.get_pipe("medspacy_target_matcher")
    # Spans in a group, not doc.ents: two concepts may read the same words ("subdural empyema" is a
    # subdural and an abscess), and doc.ents would keep only one of them.
    matcher.result_type = "group"
    nlp.get_pipe("medspacy_context").input_span_type = "group"
    rules = [
        TargetRule(literal=f"{concept} {n}", category=concept, pattern=pattern.pattern)
        for concept in concepts
        for n, pattern in enumerate(k.findings[concept].patterns)
    ]
    matcher.add(rules)
    return nlp


def run_medspacy(k: Knowledge, concepts: list[str]) -> SystemResult:
    result = SystemResult("medSpaCy ConText")
    start = time.perf_counter()
    nlp = build_medspacy(k, concepts)
    group = nlp.get_pipe("medspacy_target_matcher").span_group_name
    result.load_s = time.perf_counter() - start

    def read(text: str) -> tuple[frozenset[str], frozenset[str]]:
        """(concepts mentioned, concepts that are the patient's current finding) in `text`."""
        doc = nlp(text)  # the span group lives only as long as its Doc
        spans = doc.spans.get(group, [])
        mentioned = frozenset(s.label_ for s in spans)
        current = frozenset(
            s.label_ for s in spans if not any(getattr(s._, a) for a in NOT_CURRENT)
        )
        return mentioned, current

    for concept, context, phrase in phrases():
        mentioned, current = read(phrase)
        result.current[(concept, context, phrase)] = concept in current
        result.mentioned[(concept, context, phrase)] = concept in mentioned
    texts = sorted({phrase for _, _, phrase in phrases()})
    firsts: list[float] = []
    memos: list[float] = []
    for _ in range(ROUNDS):
        memo: dict[str, tuple[frozenset[str], frozenset[str]]] = {}

        def memoised(text: str, memo: dict[str, Any] = memo) -> object:
            found = memo.get(text)
            if found is None:
                found = memo[text] = read(text)
            return found

        firsts.append(_mean_us(memoised, texts))
        memos.append(statistics.fmean(_mean_us(memoised, texts) for _ in range(MEMO_REPEATS)))
    result.first_call_us = statistics.median(firsts)
    result.memoised_us = statistics.median(memos)
    return result


def tree_state() -> dict[str, str]:
    """The commit the comparison ran on, and whether the knowledge had uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--", "hooks", "cds_service/knowledge")
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_knowledge": dirty}


def _cell(result: SystemResult, concept: str, context: str) -> str:
    keys = [(concept, context, p) for p in CORPUS[concept].get(context, ())]
    return f"{sum(result.correct(key) for key in keys)}/{len(keys)}"


def _total(result: SystemResult, context: str | None = None) -> str:
    keys = [key for key in result.current if context is None or key[1] == context]
    return f"{sum(result.correct(key) for key in keys)}/{len(keys)}"


def table(results: list[SystemResult]) -> str:
    """Markdown: per concept and context, phrases read correctly (affirmed: read as the patient's
    current finding; every other context: not read so), one column per system and context."""
    names = " / ".join(r.name for r in results)
    header = "| red flag | " + " | ".join(CONTEXTS) + " | all |"
    lines = [
        f"Cells: {names}, phrases read correctly / phrases.",
        "",
        header,
        "|" + " --- |" * (len(CONTEXTS) + 2),
    ]
    for concept in CORPUS:
        cells = [" / ".join(_cell(r, concept, c) for r in results) for c in CONTEXTS]
        every = " / ".join(
            f"{sum(r.correct(k) for k in r.current if k[0] == concept)}/"
            f"{sum(1 for k in r.current if k[0] == concept)}"
            for r in results
        )
        lines.append(f"| {concept} | " + " | ".join(cells) + f" | {every} |")
    totals = [" / ".join(_total(r, c) for r in results) for c in CONTEXTS]
    every = " / ".join(_total(r) for r in results)
    lines.append("| **total** | " + " | ".join(f"**{t}**" for t in totals) + f" | **{every}** |")
    return "\n".join(lines)


def costs(results: list[SystemResult]) -> str:
    lines = [
        "| system | first call (µs/phrase) | memoised (µs/phrase) | start-up (s) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in results:
        start_up = f"{r.load_s:.2f}" if r.load_s else "(with the knowledge)"
        lines.append(f"| {r.name} | {r.first_call_us:.1f} | {r.memoised_us:.2f} | {start_up} |")
    return "\n".join(lines)


def miss_list(result: SystemResult) -> str:
    lines: list[str] = []
    for context in CONTEXTS:
        misses = [k for k in result.misses() if k[1] == context]
        if not misses:
            continue
        what = "not read as current" if expected_current(context) else "read as current"
        lines.append(f"- {context} ({what}), {len(misses)}:")
        for concept, _, phrase in misses:
            unseen = "" if result.mentioned[(concept, context, phrase)] else " (no mention found)"
            lines.append(f'  - {concept}: "{phrase}"{unseen}')
    return "\n".join(lines) or "- none"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, help="write every answer and cost to this file")
    parser.add_argument("--markdown", action="store_true", help="print the miss lists too")
    parser.add_argument(
        "--known-misses",
        action="store_true",
        help="print our misses as tests/test_context_corpus.py's KNOWN_MISSES, and stop",
    )
    args = parser.parse_args(argv)

    k = load_knowledge()
    concepts = red_flag_keys(k)
    uncovered = [c for c in concepts if c not in CORPUS]
    unknown = [c for c in CORPUS if c not in k.findings]
    state = tree_state()
    print(f"commit {state['commit']}")
    if state["uncommitted_knowledge"]:
        print("uncommitted knowledge changes:\n" + state["uncommitted_knowledge"])
    if uncovered:
        print(f"red flags without phrasings in the corpus: {', '.join(uncovered)}")
    if unknown:
        print(f"corpus concepts the knowledge does not know: {', '.join(unknown)}")
        return 1
    print(f"{sum(1 for _ in phrases())} phrases, {len(CORPUS)} red flags\n")

    if args.known_misses:
        ours = SystemResult("language.py")
        for key in phrases():
            ours.current[key] = key[0] in match({"text": key[2]}, k.findings)
        print("KNOWN_MISSES: frozenset[tuple[str, str, str]] = frozenset(\n    {")
        print("\n".join(f"        {key!r}," for key in sorted(ours.misses())))
        print("    }\n)")
        return 0

    results = [run_ours(k)]
    try:
        results.append(run_medspacy(k, list(CORPUS)))
    except ImportError as exc:
        print(f"medSpaCy not importable ({exc}): our side only\n")

    print(table(results))
    print()
    print(costs(results))
    if args.markdown:
        for r in results:
            print(f"\n### Misses: {r.name}\n")
            print(miss_list(r))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "tree": state,
                    "systems": [
                        {
                            "name": r.name,
                            "first_call_us": r.first_call_us,
                            "memoised_us": r.memoised_us,
                            "load_s": r.load_s,
                            "answers": [
                                {
                                    "concept": c,
                                    "context": x,
                                    "phrase": p,
                                    "current": r.current[(c, x, p)],
                                    "mentioned": r.mentioned[(c, x, p)],
                                }
                                for c, x, p in r.current
                            ],
                        }
                        for r in results
                    ],
                },
                indent=1,
                ensure_ascii=False,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
