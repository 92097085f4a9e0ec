"""PII detectors on realistic text: what must be found, what must not."""

from __future__ import annotations

import pytest

from ladle.gateway import pii

POSITIVE = [
    ("Please email jane.doe+billing@example.co.uk about the invoice.", "EMAIL_ADDRESS", "jane.doe+billing@example.co.uk"),
    ("Reach me at (415) 555-0132 after 5pm.", "PHONE_NUMBER", "(415) 555-0132"),
    ("My cell is +1 415-555-0132.", "PHONE_NUMBER", "+1 415-555-0132"),
    ("UK office: +44 20 7946 0958, ask for Sam.", "PHONE_NUMBER", "+44 20 7946 0958"),
    ("Berlin: +49 30 1234567", "PHONE_NUMBER", "+49 30 1234567"),
    ("call 212.555.0199 now", "PHONE_NUMBER", "212.555.0199"),
    ("Charge my Visa 4111 1111 1111 1111 exp 04/27.", "CREDIT_CARD", "4111 1111 1111 1111"),
    ("amex 378282246310005 ok", "CREDIT_CARD", "378282246310005"),
    ("mastercard 5555-5555-5555-4444.", "CREDIT_CARD", "5555-5555-5555-4444"),
    ("Transfer to DE89 3704 0044 0532 0130 00 by Friday", "IBAN_CODE", "DE89 3704 0044 0532 0130 00"),
    ("IBAN GB82WEST12345698765432 (Barclays)", "IBAN_CODE", "GB82WEST12345698765432"),
    ("FR: FR14 2004 1010 0505 0001 3M02 606", "IBAN_CODE", "FR14 2004 1010 0505 0001 3M02 606"),
    ("The host 10.0.12.254 is down.", "IP_ADDRESS", "10.0.12.254"),
    ("v6 peer 2001:0db8:85a3:0000:0000:8a2e:0370:7334 dropped", "IP_ADDRESS",
     "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
    ("link-local fe80::1ff:fe23:4567:890a%", "IP_ADDRESS", "fe80::1ff:fe23:4567:890a"),
    ("SSN: 078-05-1120.", "US_SSN", "078-05-1120"),
    ("ssn 219 09 9999 on file", "US_SSN", "219 09 9999"),
]

NEGATIVE = [
    "The meeting is on 2024-01-15 at 10:30:00 in room 4B.",
    "Version 1.2.3 fixed bug #4521; see commit 9f8e7d6.",
    "Card 4111 1111 1111 1112 fails the Luhn check.",
    "IBAN DE89 3704 0044 0532 0130 01 has a bad checksum.",
    "999.10.10.10 is not an address, nor is 256.1.1.1.",
    "MAC 00:1A:2B:3C:4D:5E and time 12:30:45 are not IPs.",
    "SSN 000-12-3456 and 666-12-3456 and 123-00-4567 are invalid.",
    "Total: 1,299.00 USD for 3 items; order 123456.",
    "user@localhost is not an email address with a domain.",
    "Zip 94103, extension 1234, year 2024.",
]


@pytest.mark.parametrize(("text", "kind", "value"), POSITIVE, ids=[p[1] + str(i) for i, p in enumerate(POSITIVE)])
def test_finds_realistic_values(text, kind, value):
    found = [(m.kind, text[m.start:m.end]) for m in pii.find(text)]
    assert (kind, value) in found, found


@pytest.mark.parametrize("text", NEGATIVE)
def test_leaves_lookalikes_alone(text):
    assert pii.find(text) == []


def test_mask_replaces_each_value_with_its_kind():
    text = ("Hi, I'm John (john.smith@acme.io, 415-555-0132). Card 4111111111111111, "
            "SSN 078-05-1120, IBAN NL91 ABNA 0417 1643 00, server 192.168.1.20. Thanks!")
    assert pii.mask(text) == ("Hi, I'm John (<EMAIL_ADDRESS>, <PHONE_NUMBER>). Card <CREDIT_CARD>, "
                              "SSN <US_SSN>, IBAN <IBAN_CODE>, server <IP_ADDRESS>. Thanks!")
    assert pii.kinds_in(text) == {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE",
                                  "IP_ADDRESS"}


def test_grouped_values_do_not_swallow_following_text():
    text = "IBAN DE89 3704 0044 0532 0130 00 1234 is the account"
    (m,) = pii.find(text)
    assert text[m.start:m.end] == "DE89 3704 0044 0532 0130 00"


def test_checksums():
    assert pii._luhn("4539578763621486") and not pii._luhn("4539578763621487")
    assert pii._iban("BE68539007547034") and not pii._iban("BE68539007547035")
