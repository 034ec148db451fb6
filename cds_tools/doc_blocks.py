"""Text of the docs that the code knows, generated from the code so it cannot drift: the predicates
precedence rules may name, the knowledge files the content hash covers, and the sample output of
`cds-service evaluate --pretty`. Each lives in a doc between two markers,

    <!-- generated: NAME -->...<!-- /generated: NAME -->

and tests/test_docs_drift.py fails when one differs from what the code says now. To refresh them:

    .venv/bin/python -m cds_tools.doc_blocks --write
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NUMBER_WORDS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SAMPLE_FIXTURE = "fixtures/seed-persistent-45f-4-days-after-lp.json"
# Any instant gives the same output (fixture times are relative): a fixed one keeps it exact.
SAMPLE_NOW = "2026-11-24T12:00:00Z"


def number_word(n: int) -> str:
    return NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else str(n)


def predicates() -> str:
    """The predicates `precedence` may name, in the order the code defines them."""
    from cds_service.knowledge.predicates import PREDICATES

    return ", ".join(f"`{name}`" for name in PREDICATES)


def knowledge_files() -> str:
    """The files of a knowledge folder whose content the fingerprint hashes."""
    from cds_service.knowledge.load import KNOWLEDGE_FILES

    names = ", ".join(f"`{name}`" for name in KNOWLEDGE_FILES)
    return f"the {number_word(len(KNOWLEDGE_FILES))} files {names}"


def evaluate_pretty() -> str:
    """What `cds-service evaluate SAMPLE_FIXTURE --pretty` prints."""
    from typer.testing import CliRunner

    from cds_tools.cli import cli

    result = CliRunner().invoke(
        cli, ["evaluate", str(ROOT / SAMPLE_FIXTURE), "--pretty", "--now", SAMPLE_NOW]
    )
    if result.exit_code != 0:
        raise RuntimeError(f"cds-service evaluate failed: {result.output.strip()}")
    command = f"$ cds-service evaluate {SAMPLE_FIXTURE} --pretty"
    return f"\n```text\n{command}\n{result.stdout.rstrip()}\n```\n"


@dataclass(frozen=True)
class Block:
    name: str
    doc: str  # path from the repository root
    text: Callable[[], str]


BLOCKS = [
    Block("predicates", "docs/knowledge.md", predicates),
    Block("knowledge-files", "docs/knowledge.md", knowledge_files),
    Block("evaluate-pretty", "docs/sandbox.md", evaluate_pretty),
]


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- generated: {re.escape(name)} -->)(.*?)(<!-- /generated: {re.escape(name)} -->)",
        re.DOTALL,
    )


def stale(root: Path = ROOT) -> list[str]:
    """One line per block whose doc text differs from the code's (or whose markers are missing)."""
    problems = []
    for block in BLOCKS:
        doc = (root / block.doc).read_text(encoding="utf-8")
        found = _pattern(block.name).findall(doc)
        if len(found) != 1:
            problems.append(f"{block.doc}: {len(found)} '{block.name}' blocks, expected one")
        elif found[0][1] != block.text():
            problems.append(f"{block.doc}: the '{block.name}' block is out of date")
    return problems


def _filled(text: str) -> Callable[[re.Match[str]], str]:
    return lambda match: match[1] + text + match[3]


def write(root: Path = ROOT) -> list[str]:
    """Rewrite every stale block in place; the docs changed."""
    changed = []
    for block in BLOCKS:
        path = root / block.doc
        doc = path.read_text(encoding="utf-8")
        new, count = _pattern(block.name).subn(_filled(block.text()), doc)
        if count != 1:
            raise SystemExit(f"{block.doc}: {count} '{block.name}' blocks, expected one")
        if new != doc:
            path.write_text(new, encoding="utf-8")
            changed.append(f"{block.doc}: {block.name}")
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description="Check or refresh the generated doc blocks.")
    parser.add_argument("--write", action="store_true", help="rewrite the stale blocks")
    args = parser.parse_args()
    if args.write:
        changed = write()
        print("\n".join(f"wrote {c}" for c in changed) or "every generated block is up to date")
        return
    problems = stale()
    print("\n".join(problems) or "every generated block is up to date")
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
