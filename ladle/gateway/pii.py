"""PII detectors: regular expressions for candidates, checksums and ranges to confirm them.

Kinds and mask labels follow Microsoft Presidio (what Databricks' PII guardrail uses):
EMAIL_ADDRESS, PHONE_NUMBER (North American numbers, and international numbers written with
a leading +), CREDIT_CARD (13-19 digits, Luhn), IBAN_CODE (ISO 13616 mod-97), IP_ADDRESS
(IPv4 and IPv6, validated by `ipaddress`) and US_SSN (area/group/serial rules). A masked
value becomes `<KIND>`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Callable, Iterator

# The longest value a detector confirms (an IPv6 address with an embedded IPv4 address is 45
# characters; a spaced IBAN at most 42): streaming masks hold back this much text.
MAX_VALUE_CHARS = 48


@dataclass(frozen=True)
class Match:
    start: int
    end: int
    kind: str


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


CARD_GROUPS = ((4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4))


def _card(text: str) -> bool:
    """Luhn-valid 13-19 digits from a card network (2-6), written plain or in card groups."""
    groups = re.split(r"[ -]", text)
    digits = "".join(groups)
    if len(groups) > 1 and (tuple(len(g) for g in groups) not in CARD_GROUPS or len(set(text) & set(" -")) > 1):
        return False
    return (13 <= len(digits) <= 19 and digits[0] in "23456" and len(set(digits)) > 1
            and _luhn(digits))


def _iban(text: str) -> bool:
    s = text.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _ip(text: str) -> bool:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return False
    return addr.version == 4 or sum(c in "0123456789abcdefABCDEF" for c in text) >= 2


def _phone(text: str) -> bool:
    digits = sum(c.isdigit() for c in text)
    if text.startswith("+"):
        return 8 <= digits <= 15
    return 10 <= digits <= 11


def _always(text: str) -> bool:
    return True


_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+"
                    r"[A-Za-z]{2,24}(?![\w-])")
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_IBAN = re.compile(r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![\w])")
_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\w-])")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?"
                   r"(?![\w:])")
_PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"(?:\+?1[ .-]?)?(?:\([2-9]\d{2}\)|[2-9]\d{2})[ .-]?[2-9]\d{2}[ .-]\d{4}"      # NANP
    r"|\+[1-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,6}"                                 # +international
    r")(?![\w])")

# Order matters: an earlier kind wins where matches overlap.
DETECTORS: tuple[tuple[str, re.Pattern[str], Callable[[str], bool]], ...] = (
    ("EMAIL_ADDRESS", _EMAIL, _always),
    ("CREDIT_CARD", _CARD, _card),
    ("IBAN_CODE", _IBAN, _iban),
    ("US_SSN", _SSN, _always),
    ("IP_ADDRESS", _IPV4, _ip),
    ("IP_ADDRESS", _IPV6, _ip),
    ("PHONE_NUMBER", _PHONE, _phone),
)


def _confirm(text: str, start: int, end: int, ok: Callable[[str], bool]) -> int | None:
    """The end of the longest confirmed value at `start`: grouped values (cards, IBANs,
    phones) may have swallowed a following group, so shorter cuts at separators are tried."""
    cand = text[start:end]
    if ok(cand):
        return end
    for i in range(len(cand) - 1, 0, -1):
        if cand[i] in " -." and ok(cand[:i]):
            return start + i
    return None


def find(text: str) -> list[Match]:
    """Every PII value in `text`, left to right, without overlaps."""
    if len(text) < 7:
        return []
    found: list[Match] = []
    taken: list[tuple[int, int]] = []
    for kind, rx, ok in DETECTORS:
        for m in rx.finditer(text):
            end = _confirm(text, m.start(), m.end(), ok)
            if end is None:
                continue
            if any(m.start() < e and s < end for s, e in taken):
                continue
            taken.append((m.start(), end))
            found.append(Match(m.start(), end, kind))
    found.sort(key=lambda x: x.start)
    return found


def kinds_in(text: str) -> set[str]:
    return {m.kind for m in find(text)}


def mask(text: str, matches: list[Match] | None = None) -> str:
    matches = find(text) if matches is None else matches
    if not matches:
        return text
    out, pos = [], 0
    for m in matches:
        out.append(text[pos:m.start])
        out.append(f"<{m.kind}>")
        pos = m.end
    out.append(text[pos:])
    return "".join(out)


def iter_kinds(texts: Iterator[str]) -> set[str]:
    kinds: set[str] = set()
    for t in texts:
        kinds |= kinds_in(t)
    return kinds
