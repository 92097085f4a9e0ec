"""The SCIM filter subset (ladle.control.scim_filter): what matches, and every malformed
filter refused with a 400 that says what is wrong."""

from __future__ import annotations

import pytest

from ladle.control.scim_filter import parse
from ladle.schemas.errors import ApiError

ATTRS = frozenset({"id", "username", "displayname", "active"})
ANA = {"id": "1", "username": "ana@example.com", "displayname": "Ana Lee", "active": True}
BOB = {"id": "2", "username": "bob", "displayname": "", "active": True}


def matches(text: str) -> list[str]:
    keep = parse(text, ATTRS)
    return [r["id"] for r in (ANA, BOB) if keep(r)]


@pytest.mark.parametrize("text, ids", [
    ('userName eq "ana@example.com"', ["1"]),
    ('USERNAME EQ "ANA@example.COM"', ["1"]),            # names and values case-insensitive
    ('userName ne "bob"', ["1"]),
    ('displayName co "lee"', ["1"]),
    ('userName sw "b"', ["2"]),
    ('userName ew ".com"', ["1"]),
    ("displayName pr", ["1"]),                            # empty is not present
    ('id eq "1" or id eq "2"', ["1", "2"]),
    ('id eq "1" and userName eq "bob"', []),
    ('id eq "2" or id eq "1" and userName eq "bob"', ["2"]),   # and binds tighter
    ("active eq true", ["1", "2"]),
    ('userName eq "say \\"hi\\""', []),
])
def test_filters_match(text: str, ids: list[str]) -> None:
    assert matches(text) == ids


@pytest.mark.parametrize("text, says", [
    ("", "empty"),
    ('nickName eq "x"', "cannot filter on 'nickName'"),
    ('userName gt "x"', "unknown operator 'gt'"),
    ("userName eq", "a value is expected"),
    ("userName eq bob", "quoted string"),
    ('(userName eq "x")', "parentheses"),
    ('userName eq "x" nor id eq "1"', "'and' or 'or' expected"),
    ('userName eq "x" and', "attribute name is expected"),
    ('userName eq "unterminated', "cannot read"),
    ("userName", "operator is expected"),
])
def test_malformed_filters_are_400s_that_say_why(text: str, says: str) -> None:
    with pytest.raises(ApiError) as e:
        parse(text, ATTRS)
    assert e.value.status == 400 and e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert says in e.value.message and e.value.message.startswith("filter:")
