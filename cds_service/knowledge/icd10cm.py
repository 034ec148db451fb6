"""The ICD-10-CM code set of a real CMS release, as shipped by the `simple-icd-10-cm` package.

Value sets name ICD-10-CM codes and whole subtrees (`I60` is I60 and every code under it), and ranges of
categories such as a block (`Z80-Z84`, family history) or a chapter (`O00-O9A`, pregnancy, childbirth and
the puerperium), compared as the classification orders its categories; each one is
checked against this release at start-up, so a mistyped code fails loudly instead of matching nothing.
Only the package's plain code list is read (codes without dots, one per line): importing the package
itself parses the whole tabular XML, seconds of start-up for nothing the service uses."""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path

_CODE_LIST = re.compile(r"code-list-(?P<release>.+)\.txt")


class Icd10CmRelease:
    def __init__(self, codes: frozenset[str], release: str) -> None:
        self.codes = codes
        self.release = release

    def __contains__(self, code: object) -> bool:
        """A code, or a range of categories written "O00-O9A" (a block of the classification, or a
        chapter's span) whose both ends are codes of this release."""
        if not isinstance(code, str):
            return False
        ends = code.replace(".", "").upper().split("-")
        if len(ends) == 2:
            return all(len(end) == 3 and end in self.codes for end in ends) and ends[0] <= ends[1]
        return len(ends) == 1 and ends[0] in self.codes


@cache
def icd10cm_release() -> Icd10CmRelease:
    """The code set shipped by `simple-icd-10-cm` (found without importing the package)."""
    spec = importlib.util.find_spec("simple_icd_10_cm")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the simple-icd-10-cm package is not installed")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    lists = sorted(data.glob("code-list-*.txt"))
    if not lists:
        raise RuntimeError(f"no ICD-10-CM code list in {data}")
    path = lists[-1]
    match = _CODE_LIST.fullmatch(path.name)
    codes = frozenset(
        line.strip().upper()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and "-" not in line  # blocks such as A00-A09 are not codes
    )
    return Icd10CmRelease(codes, match["release"] if match else path.stem)
