"""VietQR payloads and QR images (portal.billing.vietqr), checked against the specifications.

Expected payloads are written out field by field from the NAPAS / EMVCo layout (see the module's
docstring); their CRCs come from ``_crc_reference`` below, a bit-by-bit CRC-16/CCITT-FALSE written from
the algorithm's definition and itself checked against the standard check value and published payloads.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from portal.billing import vietqr
from portal.billing.vietqr import VietQR, crc16_ccitt_false, decode, payload, qr_svg

SVG_NS = "{http://www.w3.org/2000/svg}"


def _crc_reference(data: bytes) -> str:
    """CRC-16/CCITT-FALSE from its definition: poly 0x1021, init 0xFFFF, MSB first, no final XOR."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return f"{crc:04X}"


def _with_crc(body: str) -> str:
    """``body`` (everything before the CRC field) closed with "6304" and its CRC."""
    body += "6304"
    return body + _crc_reference(body.encode("utf-8"))


# Published payloads. The NAPAS ones are the worked examples of NAPAS "QR_Format_T&C_v1.5.2_EN_102022",
# as reproduced in takashato/laravel-vietqr tests/GeneralTest.php; the others are from subiz/vietqr README.md.
NAPAS_DYNAMIC = (
    "00020101021238570010A00000072701270006970403011300110123456780208QRIBFTTA530370454061800005802VN"
    "62340107NPS68690819thanh toan don hang63042E2E"
)
NAPAS_STATIC = "00020101021138570010A00000072701270006970403011300110123456780208QRIBFTTA53037045802VN63049E6F"
NAPAS_STATIC_CARD = (
    "00020101021138600010A00000072701300006970403011697040311012345670208QRIBFTTC53037045802VN63044F52"
)
SUBIZ_VIETINBANK = (
    "00020101021238570010A00000072701270006970415011300110019324180208QRIBFTTA530370454061200005802VN"
    "62170813ung ho lu lut6304C15C"
)
SUBIZ_MBBANK = (
    "00020101021238630010A0000007270133000697042201190023457923442ASDFLJ0208QRIBFTTA53037045405401235802VN"
    "62290825chuyen khoan alsdkf laksj6304E5DB"
)

# The fields of a transfer to account 0011012345678 at BIN 970403, written out by hand.
MERCHANT_38 = "3857" "0010A000000727" "0127" "0006970403" "0113" "0011012345678" "0208QRIBFTTA"


# --- CRC ------------------------------------------------------------------------------------------


def test_crc_check_value():
    # The catalogue check value of CRC-16/CCITT-FALSE is 0x29B1 for the ASCII string "123456789".
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert _crc_reference(b"123456789") == "29B1"


@pytest.mark.parametrize("published", [NAPAS_DYNAMIC, NAPAS_STATIC, NAPAS_STATIC_CARD, SUBIZ_VIETINBANK, SUBIZ_MBBANK])
def test_published_crcs_check(published):
    assert _crc_reference(published[:-4].encode()) == published[-4:]
    assert f"{crc16_ccitt_false(published[:-4].encode()):04X}" == published[-4:]


# --- published payloads decode ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("published", "expected"),
    [
        (NAPAS_DYNAMIC, VietQR("970403", "0011012345678", 180000, "thanh toan don hang", "VND", "VN", None)),
        (NAPAS_STATIC, VietQR("970403", "0011012345678", None, None, "VND", "VN", None)),
        (SUBIZ_VIETINBANK, VietQR("970415", "0011001932418", 120000, "ung ho lu lut", "VND", "VN", None)),
        (SUBIZ_MBBANK, VietQR("970422", "0023457923442ASDFLJ", 40123, "chuyen khoan alsdkf laksj", "VND", "VN", None)),
    ],
)
def test_published_payloads_decode(published, expected):
    assert decode(published) == expected


def test_our_dynamic_payload_has_the_napas_example_layout():
    ours = payload(bank_bin="970403", account="0011012345678", amount=180000, reference="NPS6869")
    # Everything up to the country is the NAPAS example byte for byte; then our 62 carries only 08.
    assert ours.startswith(NAPAS_DYNAMIC[: NAPAS_DYNAMIC.index("5802VN") + 6])


# --- our payloads, field by field --------------------------------------------------------------------


def test_dynamic_payload_field_by_field():
    expected = _with_crc(
        "000201" "010212" + MERCHANT_38 + "5303704" "5406180000" "5802VN" "6219" "0815ST 2026 11 ACME"
    )
    got = payload(bank_bin="970403", account="0011012345678", amount=180000, reference="ST 2026 11 ACME")
    assert got == expected


def test_static_payload_has_no_amount_and_initiation_11():
    expected = _with_crc("000201" "010211" + MERCHANT_38 + "5303704" "5802VN" "6209" "0805INV 1")
    assert payload(bank_bin="970403", account="0011012345678", amount=None, reference="INV 1") == expected


def test_merchant_name_loses_its_diacritics_and_its_length_counts_ascii_characters():
    # "Công ty Đại Phát" is 16 characters and 21 bytes in UTF-8; field 59 must be "ans" (ASCII), so it is
    # written as "Cong ty Dai Phat": 16 characters, 16 bytes.
    assert len("Công ty Đại Phát".encode()) == 21
    expected = _with_crc(
        "000201" "010212" + MERCHANT_38 + "5303704" "54071250000" "5802VN" "5916Cong ty Dai Phat" "6209" "0805ST 42"
    )
    name = "Công ty Đại Phát"
    got = payload(bank_bin="970403", account="0011012345678", amount=1_250_000, reference="ST 42", merchant_name=name)
    assert got == expected
    assert decode(got).merchant_name == "Cong ty Dai Phat"


def test_merchant_name_in_decomposed_form_is_stripped_the_same():
    import unicodedata

    nfd = unicodedata.normalize("NFD", "Nguyễn Thị Hồng Nhung")
    got = payload(bank_bin="970403", account="1", amount=1, reference="A", merchant_name=nfd)
    assert "5921Nguyen Thi Hong Nhung" in got


def test_decode_counts_lengths_in_characters_not_bytes():
    # EMVCo "S" fields: the length is the number of characters. "ủng hộ lũ lụt" is 13 characters, 20 bytes.
    text = "ủng hộ lũ lụt"
    assert (len(text), len(text.encode())) == (13, 20)
    body = "000201" "010212" + MERCHANT_38 + "5303704" "540550000" "5802VN" "6217" "0813" + text
    assert decode(_with_crc(body)).reference == text
    # The same field with its byte count as length is malformed.
    wrong = "000201" "010212" + MERCHANT_38 + "5303704" "540550000" "5802VN" "6224" "0820" + text
    with pytest.raises(ValueError, match="malformed"):
        decode(_with_crc(wrong))


@pytest.mark.parametrize("amount", [None, 1, 999, 1000, 180000, 1_250_000, 499_999_999, 9_999_999_999_999])
@pytest.mark.parametrize("reference", ["A", "ST 2026 11 ACME 01", "X" * 25, "0 1 2 3 4 5 6 7 8 9 A B C"])
def test_round_trip(amount, reference):
    got = payload(bank_bin="970436", account="1234567890123456789", amount=amount, reference=reference)
    assert decode(got) == VietQR("970436", "1234567890123456789", amount, reference, "VND", "VN", None)
    assert got[-4:] == _crc_reference(got[:-4].encode())
    assert got.isascii()


def test_crc_is_uppercase_and_lowercase_is_read():
    got = payload(bank_bin="970403", account="0011012345678", amount=180000, reference="ST 1")
    assert re.fullmatch(r"[0-9A-F]{4}", got[-4:])
    assert decode(got[:-4] + got[-4:].lower()).amount == 180000


# --- payload refusals --------------------------------------------------------------------------------

GOOD = {"bank_bin": "970403", "account": "0011012345678", "amount": 180000, "reference": "ST 1"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"currency": "USD"}, "VND only"),
        ({"currency": "vnd"}, "VND only"),
        ({"amount": 0}, "positive"),
        ({"amount": -5}, "positive"),
        ({"amount": 10**13}, "13 digits"),
        ({"amount": 1.0}, "whole number"),
        ({"amount": True}, "whole number"),
        ({"amount": "180000"}, "whole number"),
        ({"bank_bin": "97040"}, "6-digit"),
        ({"bank_bin": "9704031"}, "6-digit"),
        ({"bank_bin": "97040A"}, "6-digit"),
        ({"bank_bin": "９７０４０３"}, "6-digit"),  # fullwidth digits are not ASCII digits
        ({"account": ""}, "account"),
        ({"account": "1" * 20}, "account"),
        ({"account": "0011-0123"}, "account"),
        ({"account": "abc123"}, "account"),
        ({"reference": ""}, "reference"),
        ({"reference": "X" * 26}, "reference"),
        ({"reference": "st 1"}, "reference"),
        ({"reference": "ST-1"}, "reference"),
        ({"reference": "ST 1."}, "reference"),
        ({"reference": " ST 1"}, "reference"),
        ({"reference": "ST 1 "}, "reference"),
        ({"reference": "ST  1"}, "reference"),
        ({"reference": "THANH TOÁN"}, "reference"),
        ({"reference": "ST\n1"}, "reference"),
        ({"merchant_name": "株式会社"}, "merchant_name"),
        ({"merchant_name": "Café €"}, "merchant_name"),
        ({"merchant_name": ""}, "merchant_name"),
        ({"merchant_name": " Cong ty"}, "merchant_name"),
        ({"merchant_name": "Công ty TNHH Dịch vụ Kế toán Sài Gòn"}, "longer than 25"),
    ],
)
def test_payload_refuses(change, message):
    with pytest.raises(ValueError, match=message):
        payload(**{**GOOD, **change})


def test_payload_accepts_the_limits():
    assert decode(payload(**{**GOOD, "reference": "Z" * 25, "merchant_name": "N" * 25})).merchant_name == "N" * 25


# --- decode refusals ---------------------------------------------------------------------------------

BASE = "000201" "010212" + MERCHANT_38 + "5303704" "5406180000" "5802VN"


def _decode_error(text: str) -> str:
    with pytest.raises(ValueError) as caught:
        decode(text)
    return str(caught.value)


def test_decode_refuses_a_bad_crc():
    good = _with_crc(BASE)
    wrong_digit = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert "CRC mismatch" in _decode_error(wrong_digit)
    changed_amount = good.replace("5406180000", "5406980000")
    assert "CRC mismatch" in _decode_error(changed_amount)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "does not end with the CRC"),
        (BASE, "does not end with the CRC"),
        (BASE + "6304", "does not end with the CRC"),
        (BASE + "6304XYZ1", "does not end with the CRC"),
        (_with_crc(BASE)[:10] + _with_crc(BASE)[11:], "CRC mismatch"),
    ],
)
def test_decode_refuses_a_missing_crc(text, message):
    assert message in _decode_error(text)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # the last "6304XXXX" is inside field 62, so the CRC field is not the last data object
        (BASE + "6214" "0810ZZ", "must be the last field"),
        ("010212" "000201" + MERCHANT_38 + "5303704" "5802VN", "must come first"),
        ("000202" "010212" + MERCHANT_38 + "5303704" "5802VN", "payload format"),
        ("000201" "010213" + MERCHANT_38 + "5303704" "5802VN", "point of initiation"),
        (BASE + "5900", "length 00"),
        (BASE + "5930ABC", "cut short"),
        (BASE + "59AB", "no ID and length"),
        (BASE + "5802VN", "appears twice"),
        ("000201" "010212" "5303704" "5802VN", "no field 38"),
        ("000201" "010212" "3857" "0010A000000728" "0127" "0006970403" "0113" "0011012345678" "0208QRIBFTTA"
         "5303704" "5802VN", "GUID"),
        ("000201" "010212" "3845" "0010A000000727" "0127" "0006970403" "0113" "0011012345678"
         "5303704" "5802VN", "no field 02"),
        ("000201" "010212" "3826" "0010A000000727" "0208QRIBFTTA" "5303704" "5802VN", "no field 01"),
        ("000201" "010212" "3856" "0010A000000727" "0126" "000597040" "0113" "0011012345678" "0208QRIBFTTA"
         "5303704" "5802VN", "not 6 digits"),
        ("000201" "010212" "3840" "0010A000000727" "0110" "0006970403" "0208QRIBFTTA" "5303704" "5802VN",
         "no field 01"),
        ("000201" "010212" + MERCHANT_38 + "5303840" "5802VN", "currency"),
        ("000201" "010212" + MERCHANT_38 + "5802VN", "no field 53"),
        ("000201" "010212" + MERCHANT_38 + "5303704", "no field 58"),
        ("000201" "010212" + MERCHANT_38 + "5303704" "540312a" "5802VN", "amount"),
        ("000201" "010212" + MERCHANT_38 + "5303704" "54010" "5802VN", "amount"),
        ("000201" "010212" + MERCHANT_38 + "5303704" "54031.5" "5802VN", "amount"),
        (BASE + "6204" "08AB", "field 62"),
    ],
)
def test_decode_refuses_malformed_or_foreign_payloads(body, message):
    assert message in _decode_error(_with_crc(body))


def test_decode_refuses_a_transfer_to_a_card():
    assert "QRIBFTTC" in _decode_error(NAPAS_STATIC_CARD)


def test_decode_accepts_a_zero_decimal_amount():
    assert decode(_with_crc("000201" "010212" + MERCHANT_38 + "5303704" "54071000.00" "5802VN")).amount == 1000


def test_decode_refuses_a_non_string():
    with pytest.raises(ValueError, match="str"):
        decode(NAPAS_STATIC.encode())  # type: ignore[arg-type]


# --- the QR image ------------------------------------------------------------------------------------

TITLE = 'Quét mã để chuyển khoản <ST 1> & "trả"'
PAYMENT = payload(bank_bin="970403", account="0011012345678", amount=1_250_000, reference="ST 2026 11 ACME")


def test_svg_is_an_inline_svg_element_with_its_title():
    svg = qr_svg(PAYMENT, title=TITLE)
    assert svg.startswith("<svg ") and svg.endswith("</svg>")
    assert "<?xml" not in svg and "<script" not in svg.lower() and "href" not in svg
    root = ET.fromstring(svg)  # noqa: S314 - our own markup; well-formed XML, the title escaped
    assert root.tag == f"{SVG_NS}svg"
    assert root.get("role") == "img"
    assert root[0].tag == f"{SVG_NS}title" and root[0].text == TITLE
    assert root.get("viewBox") == f"0 0 {root.get('width').removesuffix('px')} {root.get('height').removesuffix('px')}"
    paths = list(root.iter(f"{SVG_NS}path"))
    assert any(p.get("stroke") == "#000" for p in paths)  # the dark modules
    assert any(p.get("fill") == "#fff" for p in paths)  # a white background and quiet zone


def test_svg_needs_a_title():
    with pytest.raises(ValueError, match="title"):
        qr_svg(PAYMENT, title="  ")


def _rasterise(svg: str, px: int = 8):
    """Draw the SVG's modules into a Pillow image: the path ``M x y hN m dx dy hN ...`` segno writes."""
    from PIL import Image, ImageDraw

    root = ET.fromstring(svg)  # noqa: S314 - our own markup
    background = next(p for p in root.iter(f"{SVG_NS}path") if p.get("fill"))
    size = int(re.match(r"M0 0h(\d+)v", background.get("d")).group(1))
    dark = next(p for p in root.iter(f"{SVG_NS}path") if p.get("stroke"))
    image = Image.new("L", (size * px, size * px), 255)
    draw = ImageDraw.Draw(image)
    x = y = 0.0
    for move, dx, dy, length in re.findall(r"([Mm])(-?[\d.]+) (-?[\d.]+)h(\d+)", dark.get("d")):
        x, y = (float(dx), float(dy)) if move == "M" else (x + float(dx), y + float(dy))
        row = int(y)  # strokes of width 1 run along the middle of their row (y = row + .5)
        draw.rectangle([x * px, row * px, (x + int(length)) * px - 1, (row + 1) * px - 1], fill=0)
        x += int(length)
    return image, size


def test_svg_decodes_back_to_the_payload():
    import zxingcpp  # a dev dependency (pyproject): the code must scan, not be skipped
    svg = qr_svg(PAYMENT, title=TITLE)
    image, size = _rasterise(svg)
    found = zxingcpp.read_barcodes(image)
    assert [b.text for b in found] == [PAYMENT]
    assert found[0].format == zxingcpp.BarcodeFormat.QRCode
    assert found[0].ec_level == "M"
    assert decode(found[0].text).amount == 1_250_000
    # quiet zone of 4 modules on each side of a 21 + 4k module symbol
    assert (size - 8 - 21) % 4 == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bank_bin": "970403", "account": "1", "amount": None, "reference": "A"},
        {
            "bank_bin": "970403",
            "account": "9" * 19,
            "amount": 10**13 - 1,
            "reference": "Z" * 25,
            "merchant_name": "n" * 25,
        },
    ],
    ids=["shortest", "longest"],
)
def test_svg_is_level_m_for_the_shortest_and_longest_payloads(kwargs):
    import zxingcpp  # a dev dependency (pyproject): the code must scan, not be skipped
    text = payload(**kwargs)
    image, _ = _rasterise(qr_svg(text, title="QR"))
    assert [(b.text, b.ec_level) for b in zxingcpp.read_barcodes(image)] == [(text, "M")]


def test_module_exports():
    assert set(vietqr.__all__) == {"VietQR", "crc16_ccitt_false", "decode", "payload", "qr_svg"}
    with pytest.raises(AttributeError):
        decode(NAPAS_STATIC).amount = 5  # type: ignore[misc]
