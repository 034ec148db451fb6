"""Plain-text tables for the command line: each column as wide as its widest cell, two spaces
apart, a rule of dashes under the header; the `numeric` columns aligned right."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence


def text_table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: Collection[int] = ()
) -> str:
    cells = [list(headers), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])
