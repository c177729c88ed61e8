"""VietQR: the NAPAS 247 bank-transfer QR code (EMVCo Merchant-Presented Mode), built, read back and drawn.

A VietQR is an EMVCo MPM payload: a string of data objects, each ``ID`` (two digits), ``length`` (two
digits, the number of *characters* of the value, 01..99) and the value; templates (38, 62) nest the same
format. We build the "transfer to a bank account" form (service code ``QRIBFTTA``)::

    00 02 "01"                 payload format indicator, always first
    01 02 "12" | "11"          point of initiation: 12 dynamic (one payment, carries an amount), 11 static
    38 .. merchant account information (NAPAS)
        00 10 "A000000727"     NAPAS GUID
        01 .. beneficiary organisation
            00 06 <BIN>        acquirer: the bank's 6-digit BIN (State Bank of Vietnam list)
            01 .. <account>    consumer: the account number, up to 19 characters
        02 08 "QRIBFTTA"       service: inter-bank fund transfer 24/7 to an account
    53 03 "704"                currency, ISO 4217 numeric: VND only
    54 .. <amount>             whole đồng, up to 13 characters (only with 01 = "12")
    58 02 "VN"                 country
    59 .. <name>               merchant name, optional here, ASCII ("ans"), up to 25
    62 .. additional data
        08 .. <reference>      purpose of transaction: the text the payer's bank puts on the transfer
    63 04 <CRC>                always last: CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection,
                               no final XOR) over the UTF-8 bytes of everything before it *including* "6304",
                               as four uppercase hex digits

What this relies on (found with the search tool; third-party copies of the specifications):

* NAPAS, "Technical Specifications on NAPAS QR Switching, Part IV: QR Code Format", v1.5.2 (January 2021),
  and "QR_Format_T&C_v1.5.2_EN_102022": GUID A000000727, the 38/01 sub-template (00 BIN, 01 account),
  service codes QRIBFTTA / QRIBFTTC, 53 = 704, 58 = VN, 62/08 purpose of transaction. Their worked
  examples (static and dynamic transfers to account 0011012345678 at BIN 970403) are reproduced in
  takashato/laravel-vietqr ``tests/GeneralTest.php``; our tests decode them.
* EMVCo, "EMV QR Code Specification for Payment Systems (EMV QRCPS), Merchant-Presented Mode" v1.1
  (November 2020): the ID/length/value format, 00 first and 63 last, 01 = "11" static / "12" dynamic,
  54 up to 13 characters, 59 up to 25, the CRC of ISO/IEC 13239 over the payload including "6304".
* UnionPay International, "Merchant Presented QR Code Encoding Specification": format "ans" is the EMV
  Common Character Set (printable ASCII); for "S" fields the length is the number of characters, not
  bytes. So a decoder counts characters, and we keep our own fields ASCII so the two never differ.
* subiz/vietqr ``README.md`` and giautm/emvqr-go ``README.md``: field-by-field walk-throughs and published
  payloads (our tests decode two of them); account up to 19 characters, 62/08 up to 25.
* docs.rs ``pix_brcode_parser::validation::CRC16``: EMV QRCPS uses CRC-16/CCITT-FALSE; its standard check
  value is 0x29B1 for ``b"123456789"``. :func:`binascii.crc_hqx` with an initial value of 0xFFFF is
  exactly that algorithm.

Choices made here:

* The reference is restricted to ``A-Z``, ``0-9`` and single inner spaces, at most 25 characters: banks
  drop or mangle anything else (lower case is kept by some and upper-cased by others, punctuation and
  diacritics are stripped), and a reference that arrives changed no longer matches its statement.
* A merchant name with Vietnamese diacritics is transliterated to ASCII ("Công ty Đại Phát" ->
  "Cong ty Dai Phat"): field 59 is "ans", and bank apps show the account holder's name from the bank's
  own records anyway. A name that is still not printable ASCII afterwards, or longer than 25, is refused.
* :func:`decode` reads any well-formed VietQR transfer to an account, including payloads made elsewhere
  whose 62/08 text is lower case or not ASCII; it does not apply our reference rule.

Error messages are for developers and logs (the statement code never shows them to a client), so they
are not translated; the one string a person reads, the SVG's ``<title>``, is passed in already translated.
"""

from __future__ import annotations

import binascii
import io
import re
import unicodedata
from dataclasses import dataclass

import segno

__all__ = ["VietQR", "crc16_ccitt_false", "decode", "payload", "qr_svg"]

NAPAS_GUID = "A000000727"
SERVICE_TO_ACCOUNT = "QRIBFTTA"
CURRENCY_VND = "704"  # ISO 4217 numeric
COUNTRY_VN = "VN"

REFERENCE_MAX = 25
MERCHANT_NAME_MAX = 25
ACCOUNT_MAX = 19
AMOUNT_MAX_DIGITS = 13

_BIN = re.compile(r"[0-9]{6}")
_ACCOUNT = re.compile(rf"[A-Z0-9]{{1,{ACCOUNT_MAX}}}")
_REFERENCE = re.compile(r"[A-Z0-9]+(?: [A-Z0-9]+)*")
_ANS = re.compile(r"[\x20-\x7e]+")  # EMV Common Character Set: printable ASCII
_AMOUNT = re.compile(r"([0-9]+)(?:\.0*)?")
_CRC_TAIL = re.compile(r"6304([0-9A-Fa-f]{4})")


@dataclass(frozen=True, slots=True)
class VietQR:
    """What a VietQR transfer-to-account payload says.

    ``amount`` is whole đồng, or ``None`` for a static code (the payer types it); ``reference`` is the
    62/08 purpose of transaction, or ``None`` when absent; ``currency`` is the ISO 4217 alphabetic code
    (always ``"VND"``: a payload in another currency is refused) and ``country`` the ISO 3166 code.
    """

    bank_bin: str
    account: str
    amount: int | None
    reference: str | None
    currency: str
    country: str
    merchant_name: str | None


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE of ``data``: poly 0x1021, init 0xFFFF, not reflected, no final XOR."""
    return binascii.crc_hqx(data, 0xFFFF)


def _tlv(tag: str, value: str) -> str:
    # Every value we write is ASCII, so the character count is also the byte count.
    if not 1 <= len(value) <= 99:
        raise ValueError(f"EMVCo field {tag}: a value must be 1 to 99 characters, not {len(value)}")
    return f"{tag}{len(value):02d}{value}"


def _ascii_name(name: str) -> str:
    """``name`` with Vietnamese diacritics removed (NFD, combining marks dropped, đ/Đ -> d/D)."""
    decomposed = unicodedata.normalize("NFD", name.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def payload(
    *,
    bank_bin: str,
    account: str,
    amount: int | None,
    reference: str,
    merchant_name: str | None = None,
    currency: str = "VND",
) -> str:
    """The VietQR string for a transfer of ``amount`` đồng to ``account`` at the bank ``bank_bin``.

    ``amount`` ``None`` makes a static code (point of initiation "11", no 54) where the payer types the
    amount; otherwise it must be a positive ``int`` of at most 13 digits and the code is dynamic ("12").
    ``currency`` is there so a caller can pass its statement's currency through: VietQR transfers are
    VND only, anything else is refused. ``reference`` is what the payer's bank carries to ours: ``A-Z``,
    ``0-9`` and single inner spaces, 1 to 25 characters. ``merchant_name``, when given, is written to
    field 59 with its diacritics removed (see the module docstring).

    Raises ``ValueError`` naming the first argument that does not fit; never returns a partial payload.
    """
    if currency != "VND":
        raise ValueError(f"VietQR transfers are in VND only, not {currency!r}")
    if not isinstance(bank_bin, str) or not _BIN.fullmatch(bank_bin):
        raise ValueError("bank_bin must be the bank's 6-digit BIN")
    if not isinstance(account, str) or not _ACCOUNT.fullmatch(account):
        raise ValueError(f"account must be 1 to {ACCOUNT_MAX} characters of A-Z and 0-9")
    if amount is not None:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise ValueError("amount must be a whole number of đồng (an int) or None")
        if amount <= 0:
            raise ValueError(f"amount must be positive, not {amount}")
        if len(str(amount)) > AMOUNT_MAX_DIGITS:
            raise ValueError(f"amount has more than {AMOUNT_MAX_DIGITS} digits")
    if not isinstance(reference, str) or len(reference) > REFERENCE_MAX or not _REFERENCE.fullmatch(reference):
        raise ValueError(
            f"reference must be 1 to {REFERENCE_MAX} characters of A-Z, 0-9 and single inner spaces,"
            f" got {reference!r}"
        )
    name = None
    if merchant_name is not None:
        name = _ascii_name(merchant_name)
        if not _ANS.fullmatch(name) or name != name.strip():
            raise ValueError(f"merchant_name must be printable text without leading or trailing spaces, got {name!r}")
        if len(name) > MERCHANT_NAME_MAX:
            raise ValueError(f"merchant_name is longer than {MERCHANT_NAME_MAX} characters: {name!r}")

    beneficiary = _tlv("00", bank_bin) + _tlv("01", account)
    merchant_account = _tlv("00", NAPAS_GUID) + _tlv("01", beneficiary) + _tlv("02", SERVICE_TO_ACCOUNT)
    body = _tlv("00", "01") + _tlv("01", "11" if amount is None else "12") + _tlv("38", merchant_account)
    body += _tlv("53", CURRENCY_VND)
    if amount is not None:
        body += _tlv("54", str(amount))
    body += _tlv("58", COUNTRY_VN)
    if name is not None:
        body += _tlv("59", name)
    body += _tlv("62", _tlv("08", reference))
    body += "6304"
    return body + f"{crc16_ccitt_false(body.encode('utf-8')):04X}"


def _parse(data: str, where: str) -> dict[str, str]:
    """The data objects of ``data`` (one template level) by ID; refuses anything malformed."""
    fields: dict[str, str] = {}
    i = 0
    while i < len(data):
        head = data[i : i + 4]
        if len(head) < 4 or not head.isascii() or not head.isdigit():
            raise ValueError(f"malformed VietQR: {where} has no ID and length at position {i}")
        tag, length = head[:2], int(head[2:])
        if length == 0:
            raise ValueError(f"malformed VietQR: {where} field {tag} has length 00")
        value = data[i + 4 : i + 4 + length]
        if len(value) < length:
            raise ValueError(f"malformed VietQR: {where} field {tag} is cut short ({len(value)} of {length})")
        if tag in fields:
            raise ValueError(f"malformed VietQR: {where} field {tag} appears twice")
        fields[tag] = value
        i += 4 + length
    return fields


def _require(fields: dict[str, str], tag: str, where: str) -> str:
    try:
        return fields[tag]
    except KeyError:
        raise ValueError(f"not a VietQR transfer: {where} has no field {tag}") from None


def decode(payload: str) -> VietQR:
    """Parse a VietQR transfer-to-account payload and verify its CRC.

    Lengths are counted in characters (EMVCo), the CRC over the UTF-8 bytes; the CRC's hex digits are
    accepted in either case. Raises ``ValueError`` saying what is wrong: a CRC that is missing, not last
    or does not match; a malformed data object (bad ID or length, cut short, repeated); or a payload that
    is well-formed but not a NAPAS transfer to an account in VND.
    """
    if not isinstance(payload, str):
        raise ValueError("a VietQR payload is a str")
    tail = _CRC_TAIL.fullmatch(payload[-8:])
    if tail is None:
        raise ValueError("malformed VietQR: it does not end with the CRC field 6304XXXX")
    expected = f"{crc16_ccitt_false(payload[:-4].encode('utf-8')):04X}"
    if tail.group(1).upper() != expected:
        raise ValueError(f"VietQR CRC mismatch: the payload says {tail.group(1)}, its content gives {expected}")

    root = _parse(payload, "the payload")
    if next(iter(root)) != "00":
        raise ValueError("malformed VietQR: the payload format indicator (00) must come first")
    if next(reversed(root)) != "63":
        raise ValueError("malformed VietQR: the CRC (63) must be the last field")
    if root["00"] != "01":
        raise ValueError(f"unknown payload format {root['00']!r} (expected '01')")
    initiation = root.get("01")
    if initiation not in (None, "11", "12"):
        raise ValueError(f"unknown point of initiation {initiation!r} (expected '11' or '12')")

    merchant = _parse(_require(root, "38", "the payload"), "field 38")
    guid = _require(merchant, "00", "field 38")
    if guid != NAPAS_GUID:
        raise ValueError(f"not a NAPAS VietQR: field 38 GUID is {guid!r}, not {NAPAS_GUID!r}")
    service = _require(merchant, "02", "field 38")
    if service != SERVICE_TO_ACCOUNT:
        raise ValueError(f"not a transfer to an account: service code {service!r}, not {SERVICE_TO_ACCOUNT!r}")
    beneficiary = _parse(_require(merchant, "01", "field 38"), "field 38/01")
    bank_bin = _require(beneficiary, "00", "field 38/01")
    if not _BIN.fullmatch(bank_bin):
        raise ValueError(f"malformed VietQR: the bank BIN {bank_bin!r} is not 6 digits")
    account = _require(beneficiary, "01", "field 38/01")

    currency = _require(root, "53", "the payload")
    if currency != CURRENCY_VND:
        raise ValueError(f"not a VietQR transfer: currency {currency!r}, not {CURRENCY_VND!r} (VND)")
    country = _require(root, "58", "the payload")

    amount = None
    if "54" in root:
        match = _AMOUNT.fullmatch(root["54"])
        if match is None or int(match.group(1)) == 0:
            raise ValueError(f"malformed VietQR: amount {root['54']!r} is not a positive whole number of đồng")
        amount = int(match.group(1))

    reference = None
    if "62" in root:
        reference = _parse(root["62"], "field 62").get("08")

    return VietQR(
        bank_bin=bank_bin,
        account=account,
        amount=amount,
        reference=reference,
        currency="VND",
        country=country,
        merchant_name=root.get("59"),
    )


def qr_svg(payload: str, *, title: str, scale: int = 4, border: int = 4) -> str:
    """The QR code of ``payload`` as an inline ``<svg>`` element (no XML declaration), for a page or a PDF.

    Error correction level M, never a Micro QR. ``title`` (already translated by the caller) becomes
    the SVG's ``<title>``, escaped, and the element gets ``role="img"`` so screen readers announce it as
    one image with that name. The drawing is one path of dark modules on a white background, with a
    quiet zone of ``border`` modules (4 is what the QR standard asks) and ``scale`` px per module; the
    ``viewBox`` lets CSS resize it. No script, no external reference: fits a CSP of ``img-src 'self' data:``.
    """
    if not title.strip():
        raise ValueError("qr_svg needs a title for screen readers")
    code = segno.make(payload, error="m", micro=False, boost_error=False)
    out = io.BytesIO()
    code.save(
        out,
        kind="svg",
        xmldecl=False,
        svgns=True,
        nl=False,
        title=title,
        scale=scale,
        border=border,
        unit="px",
        dark="#000",
        light="#fff",
        svgclass="vietqr",
    )
    return out.getvalue().decode("utf-8").replace("<svg ", '<svg role="img" ', 1)
