"""Vietnamese e-invoices (hóa đơn điện tử) in XML, read exactly: never OCR'd, never "fixed".

The tree (Decree 123/2020 and its successors, Circular 78/2021 and 91/2026, the tax authority's XML
format; ``../shared/domain/vn-einvoice.md``): ``HDon/DLHDon`` with ``TTChung`` (template ``KHMSHDon``,
symbol ``KHHDon``, number ``SHDon``, date ``NLap``, currency ``DVTTe`` and rate ``TGia``, the invoice it
replaces or adjusts in ``TTHDLQuan``), ``NDHDon`` with the seller ``NBan``, the buyer ``NMua``, the lines
``DSHHDVu/HHDVu`` and the totals ``TToan`` (VAT per rate in ``THTTLTSuat/LTSuat``); the tax authority's
code ``MCCQT`` beside ``DLHDon``.

What real files do, tolerated: the message wrapper ``TDiep/DLieu``, a default namespace on ``HDon``
(tags are matched by their local name), "đ" for VND, amounts like "84000.0", ``DVT`` for ``DVTinh``.
What is checked and flagged, never corrected: a VAT subtotal that is not its rate times its base (to the
đồng), subtotals that do not add up to the totals, a seller tax code whose check digit is wrong. VAT
rates stay the strings the file has ("8%", "KCT", "KKKNT", "KHAC:…"): "KCT" (not subject) is not 0 %.

Parsing is safe: ``defusedxml`` refuses a document type, entities and external references (the vault
refuses them at upload too), and nothing is fetched.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from stdnum.vn import mst

LINE_KINDS = {"1": "goods", "2": "promotion", "3": "discount", "4": "note"}
RELATIONS = {"1": "replaces", "2": "adjusts"}


class NotAnEInvoice(ValueError):
    """The XML cannot be read as an e-invoice; ``reason`` is the stable word for why."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


@dataclass
class Party:
    name: str | None
    tax_code: str | None
    tax_code_valid: bool | None  # None when there is none (a consumer, a personal id)
    address: str | None = None


@dataclass
class Line:
    number: str | None
    kind: str  # goods, promotion, discount, note (TChat; goods when absent)
    code: str | None
    name: str | None
    unit: str | None
    quantity: str | None  # exact decimals, as strings
    price: str | None
    discount: str | None
    amount: str | None
    vat_rate: str | None  # as written: "8%", "KCT", ...


@dataclass
class VatGroup:
    rate: str
    base: str | None
    tax: str | None
    expected_tax: str | None  # rate x base, rounded half up to the đồng; None for KCT and the like
    agrees: bool | None


@dataclass
class EInvoice:
    name: str | None
    template: str | None
    series: str | None
    number: str | None
    issued_on: str | None  # ISO date
    currency: str
    exchange_rate: str | None
    payment_method: str | None
    seller: Party
    buyer: Party
    lines: list[Line]
    vat_groups: list[VatGroup]
    total_before_vat: str | None
    total_vat: str | None
    total_discount: str | None
    total: str | None
    total_in_words: str | None
    fees: list[dict[str, str | None]]  # TToan/DSLPhi/LPhi: name, amount
    tax_authority_code: str | None
    related: dict[str, str | None] | None  # the invoice this one replaces or adjusts
    flags: list[str] = field(default_factory=list)

    @property
    def key(self) -> str | None:
        """Who issued it and which one it is (seller tax code, template, symbol, number), for duplicates."""
        return invoice_key(self.seller.tax_code, f"{self.template or ''}{self.series or ''}", self.number)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_text(self) -> str:
        """The invoice in plain lines, for the record's text (what a person would read on it)."""
        parts = [self.name or "HÓA ĐƠN", f"Ký hiệu: {self.template or ''}{self.series or ''} Số: {self.number or ''}",
                 f"Ngày: {self.issued_on or ''}",
                 f"Người bán: {self.seller.name or ''} MST: {self.seller.tax_code or ''}",
                 f"Người mua: {self.buyer.name or ''} MST: {self.buyer.tax_code or ''}"]
        parts += [f"{ln.number or ''}. {ln.name or ''} {ln.quantity or ''} {ln.unit or ''} x {ln.price or ''} = "
                  f"{ln.amount or ''} ({ln.vat_rate or ''})" for ln in self.lines]
        parts += [f"Cộng tiền hàng: {self.total_before_vat or ''}", f"Tiền thuế GTGT: {self.total_vat or ''}",
                  f"Tổng cộng: {self.total or ''} {self.currency}", self.total_in_words or ""]
        return "\n".join(parts)


def parse(data: bytes) -> EInvoice:
    """The e-invoice in ``data``; raises ``NotAnEInvoice`` (``unsafe``, ``malformed``, ``not_einvoice``)."""
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise NotAnEInvoice("unsafe", str(exc)) from None
    except (ParseError, ValueError) as exc:
        raise NotAnEInvoice("malformed", str(exc)) from None
    invoice = root if _local(root) == "HDon" else _first(root, "HDon")  # bare, or wrapped in TDiep/DLieu
    data_part = _first(invoice, "DLHDon") if invoice is not None else None
    general = _first(data_part, "TTChung") if data_part is not None else None
    if general is None:
        raise NotAnEInvoice("not_einvoice", "no HDon/DLHDon/TTChung element")
    content = _first(data_part, "NDHDon")
    totals = _first(content, "TToan")
    related = _first(general, "TTHDLQuan")
    currency = (_text(general, "DVTTe") or "VND").strip()
    result = EInvoice(
        name=_text(general, "THDon"), template=_text(general, "KHMSHDon"), series=_text(general, "KHHDon"),
        number=_text(general, "SHDon"), issued_on=_date(_text(general, "NLap")),
        currency="VND" if currency.lower() in ("đ", "vnd", "vnđ", "d") else currency.upper(),
        exchange_rate=_amount(_text(general, "TGia")), payment_method=_text(general, "HTTToan"),
        seller=_party(_first(content, "NBan")), buyer=_party(_first(content, "NMua")),
        lines=[_line(item) for item in _all(_first(content, "DSHHDVu"), "HHDVu")],
        vat_groups=[_vat_group(group) for group in _all(totals, "LTSuat")],
        total_before_vat=_amount(_text(totals, "TgTCThue")), total_vat=_amount(_text(totals, "TgTThue")),
        total_discount=_amount(_text(totals, "TTCKTMai")), total=_amount(_text(totals, "TgTTTBSo")),
        total_in_words=_text(totals, "TgTTTBChu"), tax_authority_code=_text(invoice, "MCCQT"),
        fees=[{"name": _child_text(fee, "TLPhi"), "amount": _amount(_child_text(fee, "TPhi"))}
              for fee in _all(totals, "LPhi")],
        related={"kind": RELATIONS.get(_text(related, "TCHDon") or "", "related"),
                 "template": _text(related, "KHMSHDCLQuan"), "series": _text(related, "KHHDCLQuan"),
                 "number": _text(related, "SHDCLQuan"), "issued_on": _date(_text(related, "NLHDCLQuan"))}
        if related is not None and _text(related, "SHDCLQuan") else None)
    result.flags = _checks(result)
    return result


def invoice_key(tax_code: str | None, symbol: str | None, number: str | None) -> str | None:
    """An invoice's identity, however it was read (XML, a PDF's fields): the seller's tax code, the symbol
    with its template digit ("1C26TAA") and the number without its leading zeros; None when one is missing."""
    if not (tax_code and number):
        return None
    return "|".join((mst.compact(tax_code), (symbol or "").upper(), number.lstrip("0") or "0"))


def key_digest(key: str) -> str:
    """What is kept in clear to find a second copy of the same invoice: a SHA-256 of its key."""
    return hashlib.sha256(key.encode()).hexdigest()


# --- inside -------------------------------------------------------------------------------------------------

def _local(element: Element) -> str:
    return element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""


def _first(element: Element | None, name: str) -> Element | None:
    if element is None:
        return None
    return next((e for e in element.iter() if e is not element and _local(e) == name), None)


def _all(element: Element | None, name: str) -> list[Element]:
    return [] if element is None else [e for e in element.iter() if e is not element and _local(e) == name]


def _child_text(element: Element | None, *names: str) -> str | None:
    """The text of a direct child named one of ``names`` (so a seller's Ten is not the buyer's)."""
    if element is None:
        return None
    for child in element:
        if _local(child) in names and child.text and child.text.strip():
            return child.text.strip()
    return None


def _text(element: Element | None, name: str) -> str | None:
    found = _first(element, name)
    return found.text.strip() if found is not None and found.text and found.text.strip() else None


def _amount(raw: str | None) -> str | None:
    """An exact decimal as a string ("84000.0" is "84000"); anything else is kept as written."""
    if raw is None:
        return None
    try:
        value = Decimal(raw.replace(" ", ""))
    except InvalidOperation:
        return raw
    return format(value.normalize() if value != value.to_integral() else value.quantize(Decimal(1)), "f")


def _date(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw[:10]).isoformat()
    except ValueError:
        return raw


def _party(element: Element | None) -> Party:
    code = _child_text(element, "MST")
    return Party(name=_child_text(element, "Ten"), tax_code=code, address=_child_text(element, "DChi"),
                 tax_code_valid=mst.is_valid(code) if code else None)


def _line(item: Element) -> Line:
    return Line(number=_child_text(item, "STT"), kind=LINE_KINDS.get(_child_text(item, "TChat") or "1", "goods"),
                code=_child_text(item, "MHHDVu"), name=_child_text(item, "THHDVu"),
                unit=_child_text(item, "DVTinh", "DVT"), quantity=_amount(_child_text(item, "SLuong")),
                price=_amount(_child_text(item, "DGia")), discount=_amount(_child_text(item, "STCKhau")),
                amount=_amount(_child_text(item, "ThTien")), vat_rate=_child_text(item, "TSuat"))


def _percent(rate: str) -> Decimal | None:
    text = rate.strip().rstrip("%")
    try:
        return Decimal(text) / 100
    except InvalidOperation:
        return None  # KCT, KKKNT, KHAC:...: not a percentage


def _vat_group(group: Element) -> VatGroup:
    rate = _child_text(group, "TSuat") or ""
    base, tax = _amount(_child_text(group, "ThTien")), _amount(_child_text(group, "TThue"))
    percent = _percent(rate)
    expected = None
    if percent is not None and base is not None:
        expected = format((Decimal(base) * percent).quantize(Decimal(1), ROUND_HALF_UP), "f")
    agrees = None if expected is None or tax is None else abs(Decimal(expected) - Decimal(tax)) <= 1
    return VatGroup(rate=rate, base=base, tax=tax, expected_tax=expected, agrees=agrees)


def _sum(values: list[str | None]) -> Decimal | None:
    try:
        return sum((Decimal(v) for v in values if v is not None), Decimal(0))
    except InvalidOperation:
        return None


def _checks(invoice: EInvoice) -> list[str]:
    """What does not add up, as flags for a person to look at (nothing is changed)."""
    flags = [f"vat_rate_times_base:{g.rate}" for g in invoice.vat_groups if g.agrees is False]
    if invoice.vat_groups and invoice.total_before_vat is not None:
        bases = _sum([g.base for g in invoice.vat_groups])
        if bases is not None and bases != Decimal(invoice.total_before_vat):
            flags.append("vat_bases_total")
    if invoice.vat_groups and invoice.total_vat is not None:
        taxes = _sum([g.tax for g in invoice.vat_groups])
        if taxes is not None and taxes != Decimal(invoice.total_vat):
            flags.append("vat_total")
    fees = _sum([f["amount"] for f in invoice.fees]) or Decimal(0)
    if None not in (invoice.total_before_vat, invoice.total_vat, invoice.total):
        with_tax = Decimal(invoice.total_before_vat) + Decimal(invoice.total_vat) + fees
        if abs(with_tax - Decimal(invoice.total)) > 1:
            flags.append("grand_total")
    if invoice.seller.tax_code_valid is False:
        flags.append("seller_tax_code")
    if invoice.buyer.tax_code_valid is False:
        flags.append("buyer_tax_code")
    return flags
