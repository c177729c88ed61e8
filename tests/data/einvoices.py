"""Vietnamese e-invoice XML (Decree 123/2020, Circular 78/2021) generated from ground truth, with the quirks
of real files on request: the ``TDiep/DLieu`` wrapper, a default namespace on ``HDon``, "đ" as the currency,
amounts written "84000.0", per-rate subtotals that disagree with rate x base, a replaced invoice."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from xml.sax.saxutils import escape

NS = "http://laphoadon.gdt.gov.vn/2014/09/invoicexml/v1"

TRUTH = {
    "template": "1", "series": "C26TAA", "number": "123", "date": "2026-11-20", "currency": "VND",
    "seller": ("Công ty TNHH Thiết bị Minh Anh", "0318888884"),
    "buyer": ("Công ty CP Dịch vụ Kế toán Hà Thành - Chi nhánh 1", "0108888888-001"),
    # (kind code, name, unit, quantity, price, vat rate)
    "lines": [("1", "Máy tính xách tay", "Cái", "2", "15000000", "8%"),
              ("1", "Thép hộp mạ kẽm 40x80", "Cây", "50", "120000", "10%"),
              ("2", "Chuột không dây (khuyến mại)", "Cái", "2", "0", "KCT")],
    "words": "Ba mươi chín triệu đồng chẵn",
}


def plain(value: Decimal) -> Decimal:
    """An amount without trailing zeros (30000000, 25.5): as the parser and the fields write amounts."""
    value = value.normalize()
    return value.quantize(Decimal(1)) if value == value.to_integral() else value


def groups(truth: dict) -> dict[str, tuple[Decimal, Decimal]]:
    """VAT per rate from the lines, as the law computes it: rate x base, half up to the đồng (to the cent in
    another currency)."""
    bases: dict[str, Decimal] = {}
    for _kind, _name, _unit, qty, price, rate in truth["lines"]:
        bases[rate] = bases.get(rate, Decimal(0)) + Decimal(qty) * Decimal(price)
    step = Decimal(1) if truth["currency"] == "VND" else Decimal("0.01")

    def tax(rate: str, base: Decimal) -> Decimal:  # KCT (not subject) bears no VAT
        percent = Decimal(rate.rstrip("%")) / 100 if rate.endswith("%") else Decimal(0)
        return plain((base * percent).quantize(step, ROUND_HALF_UP))

    return {rate: (plain(base), tax(rate, base)) for rate, base in bases.items()}


def make_xml(truth: dict = TRUTH, *, wrap: bool = False, namespace: bool = False, currency: str | None = None,
             float_amounts: bool = False, tax_override: dict[str, int] | None = None,
             related: tuple[str, str, str, str] | None = None) -> bytes:
    """The e-invoice XML of ``truth``, with the quirks asked for."""
    def amount(v: Decimal | int | str) -> str:
        return f"{v}.0" if float_amounts and "." not in str(v) else str(v)

    per_rate = groups(truth)
    for rate, tax in (tax_override or {}).items():
        per_rate[rate] = (per_rate[rate][0], tax)
    before, vat = sum(b for b, _ in per_rate.values()), sum(t for _, t in per_rate.values())
    lines = "".join(
        f"<HHDVu><TChat>{k}</TChat><STT>{i}</STT><THHDVu>{escape(n)}</THHDVu><DVTinh>{u}</DVTinh>"
        f"<SLuong>{q}</SLuong><DGia>{amount(p)}</DGia><ThTien>{amount(plain(Decimal(q) * Decimal(p)))}</ThTien>"
        f"<TSuat>{r}</TSuat></HHDVu>" for i, (k, n, u, q, p, r) in enumerate(truth["lines"], start=1))
    rates = "".join(f"<LTSuat><TSuat>{r}</TSuat><ThTien>{amount(b)}</ThTien><TThue>{amount(t)}</TThue></LTSuat>"
                    for r, (b, t) in per_rate.items())
    link = ""
    if related:
        link = (f"<TTHDLQuan><TCHDon>{related[0]}</TCHDon><KHMSHDCLQuan>{related[1]}</KHMSHDCLQuan>"
                f"<KHHDCLQuan>{related[2]}</KHHDCLQuan><SHDCLQuan>{related[3]}</SHDCLQuan></TTHDLQuan>")
    hdon = (f"<HDon{f' xmlns={chr(34)}{NS}{chr(34)}' if namespace else ''}><DLHDon Id=\"data\"><TTChung>"
            f"<PBan>2.0.1</PBan><THDon>HÓA ĐƠN GIÁ TRỊ GIA TĂNG</THDon><KHMSHDon>{truth['template']}</KHMSHDon>"
            f"<KHHDon>{truth['series']}</KHHDon><SHDon>{truth['number']}</SHDon><NLap>{truth['date']}</NLap>"
            f"<DVTTe>{currency or truth['currency']}</DVTTe><TGia>1</TGia><HTTToan>TM/CK</HTTToan>{link}</TTChung>"
            f"<NDHDon><NBan><Ten>{escape(truth['seller'][0])}</Ten><MST>{truth['seller'][1]}</MST></NBan>"
            f"<NMua><Ten>{escape(truth['buyer'][0])}</Ten><MST>{truth['buyer'][1]}</MST></NMua>"
            f"<DSHHDVu>{lines}</DSHHDVu><TToan><THTTLTSuat>{rates}</THTTLTSuat><TgTCThue>{amount(before)}</TgTCThue>"
            f"<TgTThue>{amount(vat)}</TgTThue><TTCKTMai>0</TTCKTMai><TgTTTBSo>{amount(before + vat)}</TgTTTBSo>"
            f"<TgTTTBChu>{truth['words']}</TgTTTBChu></TToan></NDHDon></DLHDon>"
            f"<MCCQT Id=\"id-mccqt\">00A1B2C3D4E5F60718293A4B5C6D7E8F90</MCCQT></HDon>")
    if wrap:
        hdon = (f"<TDiep><TTChung><PBan>2.0.1</PBan><MNGui>TCT</MNGui><MLTDiep>202</MLTDiep></TTChung>"
                f"<DLieu>{hdon}</DLieu></TDiep>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + hdon).encode()
