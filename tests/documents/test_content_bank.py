"""Bank files told by their content: OFX (SGML v1 and XML v2) and MT940 are kinds of their own, filed as
bank statements (or "other"); lookalikes stay what they are."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from portal.documents.content import HEAD_BYTES, Refused, check_allowed, sniff
from tests.intake.bank_samples import Tx, csv_statement, mt940, mt940_block, ofx_v1, ofx_v2

TXS = [Tx(date(2024, 10, 2), Decimal("-2500000"), "Công ty Hoa Sen", "0123456789", "Tiền thuê")] * 3
OFX_V1 = ofx_v1("0011004123456", "VND", date(2024, 10, 1), date(2024, 10, 31), TXS, Decimal("1000"))
OFX_V1_1252 = ofx_v1("12345678", "USD", date(2024, 10, 1), date(2024, 10, 31),
                     [Tx(date(2024, 10, 3), Decimal("-2.50"), "Café")], Decimal("10"), charset="1252")
OFX_V2 = ofx_v2("0011004123456", "VND", date(2024, 10, 1), date(2024, 10, 31), TXS, Decimal("1000"))
BLOCK = mt940_block("S1", "BFTVVNVX/0011004123456", "VND", (date(2024, 10, 1), Decimal("100")), TXS, date(2024, 10, 31))


@pytest.mark.parametrize(("data", "kind", "extension"), [
    (OFX_V1, "ofx", "ofx"),
    (OFX_V1_1252, "ofx", "ofx"),  # Windows-1252, not UTF-8: still an OFX file
    (OFX_V2, "ofx", "ofx"),
    (OFX_V2.split(b"\n", 1)[1], "ofx", "ofx"),  # no XML declaration, the OFX processing instruction first
    (mt940(BLOCK), "mt940", "sta"),  # in the SWIFT envelope
    (BLOCK.encode(), "mt940", "sta"),  # bare tags
    (mt940(*[BLOCK] * 60)[:HEAD_BYTES], "mt940", "sta"),  # a long file's head: its end is not there yet
    (csv_statement(TXS, Decimal("0")), "csv", "csv"),
])
def test_bank_files_are_told_by_their_content(data: bytes, kind: str, extension: str) -> None:
    sniffed = sniff(data[:HEAD_BYTES])
    assert (sniffed.kind, sniffed.extension) == (kind, extension)


@pytest.mark.parametrize(("data", "code"), [
    (b"OFXHEADER:100\r\nThis is just a note about OFX files.\r\n", "type_not_allowed"),  # a header, no <OFX>
    (b":20:REF\r\n:25:123\r\nno balances here, so not a statement\r\n", "type_not_allowed"),
    (BLOCK.replace(":62F:", ":99X:").encode(), "type_not_allowed"),  # a whole file without its closing balance
])
def test_lookalikes_are_not_bank_files(data: bytes, code: str) -> None:
    with pytest.raises(Refused) as caught:
        sniff(data)
    assert caught.value.code == code


def test_bank_files_are_filed_as_bank_statements_or_other_only() -> None:
    for kind in ("ofx", "mt940"):
        check_allowed("bank_statement", kind)
        check_allowed("other", kind)
        for category in ("invoice", "receipt", "payroll_input", "contract"):
            with pytest.raises(Refused):
                check_allowed(category, kind)
    with pytest.raises(Refused) as caught:
        check_allowed("invoice", "ofx")
    assert "OFX" not in caught.value.text  # invoices name what they take, and OFX is not one of them
