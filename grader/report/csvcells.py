"""Edit a few cells of a CSV file the instructor downloaded, keeping every other byte as it was.

A platform re-imports its own file best when nothing but the edited cells changed: quoting, line
ends, the byte-order mark, dates in the platform's own format. So the file is not parsed into rows
and written again; `parse` finds where each field lies in the text and `replace` splices new text
into those places only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

BOM = "\ufeff"


@dataclass(frozen=True)
class Field:
    start: int  # offsets into the text, the quotes included
    end: int
    value: str  # unquoted
    quoted: bool


def sniff_delimiter(text: str) -> str:
    """"," or ";" or tab: the one that splits the first line (outside quotes) most often."""
    header = _first_line(text)
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    return max(counts, key=lambda d: (counts[d], d == ","))


def _first_line(text: str) -> str:
    out, quoted = [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch in "\r\n" and not quoted:
            break
        elif not quoted:
            out.append(ch)
    return "".join(out)


def parse(text: str, delimiter: str) -> list[list[Field]]:
    """Every record of `text` (RFC 4180, CR, LF or CRLF line ends) as fields with their offsets."""
    records: list[list[Field]] = []
    fields: list[Field] = []
    n = len(text)
    i = 1 if text.startswith(BOM) else 0
    while i < n or fields:
        begin = i
        if i < n and text[i] == '"':
            j, parts = i + 1, []
            while j < n:
                if text[j] == '"':
                    if j + 1 < n and text[j + 1] == '"':
                        parts.append('"')
                        j += 2
                        continue
                    j += 1
                    break
                parts.append(text[j])
                j += 1
            while j < n and text[j] not in (delimiter, "\r", "\n"):  # junk after the closing quote
                parts.append(text[j])
                j += 1
            fields.append(Field(begin, j, "".join(parts), True))
        else:
            j = i
            while j < n and text[j] not in (delimiter, "\r", "\n"):
                j += 1
            fields.append(Field(begin, j, text[begin:j], False))
        if j < n and text[j] == delimiter:
            i = j + 1
            continue
        records.append(fields)
        fields = []
        if j >= n:
            break
        i = j + 2 if text.startswith("\r\n", j) else j + 1
        if i >= n:
            break
    return records


def quote(value: str, delimiter: str, like: Field | None = None) -> str:
    """`value` as a CSV field: quoted when the original was, or when it has to be."""
    needs = bool(re.search(f'[{re.escape(delimiter)}"\\r\\n]', value)) or value != value.strip()
    if needs or (like is not None and like.quoted):
        return '"' + value.replace('"', '""') + '"'
    return value


def replace(text: str, edits: dict[tuple[int, int], str], records: list[list[Field]], delimiter: str) -> str:
    """`text` with the fields at (record, column) replaced by new values; nothing else changes."""
    spans = sorted(((records[r][c], value) for (r, c), value in edits.items()), key=lambda e: e[0].start)
    out, at = [], 0
    for field, value in spans:
        out.append(text[at:field.start])
        out.append(quote(value, delimiter, field))
        at = field.end
    out.append(text[at:])
    return "".join(out)


# OWASP's "CSV injection" rule: a cell starting with one of these is a formula to Excel, LibreOffice
# and Google Sheets ("=HYPERLINK(...)" as a hand-in's file name); a leading "'" makes it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """`value` for a CSV cell: a string that a spreadsheet would run as a formula gets a leading
    single quote; anything else (numbers: a negative grade stays a number) is returned as is.
    Every CSV the grader writes (grades.csv, the platform exports) passes its text cells through here."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def decimal_separator(cells: list[str]) -> str:
    """"," when the numbers the platform wrote use a decimal comma ("10,00"), else "."."""
    for cell in cells:
        if m := re.fullmatch(r"\s*-?\d[\d.,\s]*?([.,])\d+\s*", cell):
            return m.group(1)
    return "."


def parse_number(cell: str) -> float | None:
    """"10,00", "10.00", "1.000,5" -> float; None for empty or non-numeric cells ("-", a scale)."""
    text = cell.strip().replace("\u00a0", "").replace(" ", "")
    if not re.fullmatch(r"-?\d[\d.,]*", text):
        return None
    last = max(text.rfind(","), text.rfind("."))
    if last >= 0:
        integer, fraction = re.sub(r"[.,]", "", text[:last]), text[last + 1:]
        text = f"{integer}.{fraction}"
    try:
        return float(text)
    except ValueError:
        return None


def format_number(value: float, separator: str, decimals: int = 2) -> str:
    return f"{value:.{decimals}f}".replace(".", separator)
