"""A labelled set of invoices and receipts of our own: random ground truth in six layouts, Vietnamese and
English, rendered with WeasyPrint (a PDF with its text layer), then scanned (rasterised, turned a few
degrees, noise, JPEG artefacts; a third of them as a phone photo, in perspective and unevenly lit), and
the same invoice as e-invoice XML (``tests.data.einvoices``). Everything follows from ``SEED``.

    from tests.data.invoices import samples
    for s in samples(12):          # s.truth: field -> expected value (as intake.fields writes it)
        s.pdf(), s.scan(), s.xml()

The expected values are written the way ``portal.intake.fields`` writes values (ISO dates, amounts
without separators), from the truth, never from what a reader returned.
"""

from __future__ import annotations

import io
import random
import subprocess
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from html import escape

SEED = 20261206
LAYOUTS = ("vn_vat", "en_table", "receipt", "side_by_side", "stacked", "en_letter")
FIELDS = ("supplier_name", "supplier_tax_code", "series", "invoice_number", "issue_date", "due_date", "currency",
          "net", "vat_rate", "vat_amount", "total")

SELLERS = ["Công ty TNHH Hoa Sen", "Công ty CP Thép Việt", "Công ty TNHH Bình Minh", "Công ty CP Thực phẩm Sài Gòn",
           "Công ty TNHH Giải pháp Số An Phát", "Công ty CP Vận tải Hải Đăng"]
SELLERS_EN = ["Minh Anh Trading Co., Ltd", "Saigon Office Supplies JSC", "Mekong Logistics Co., Ltd",
              "Red River Software JSC", "Pacific Print Company"]
STORES = ["Cửa hàng Văn phòng phẩm Hồng Hà", "Cửa hàng Điện máy Phú Quý", "Cửa hàng Tạp hóa Minh Châu"]
BUYERS = [("Công ty TNHH Kế toán Hà Thành", "0108888888"), ("Công ty CP Dịch vụ Sao Mai", "0312345671")]
ITEMS = ["Giấy in A4", "Mực in HP 12A", "Laptop Dell Latitude", "Dịch vụ vệ sinh văn phòng", "Thép hộp 40x80",
         "Bàn làm việc gỗ", "Nước uống đóng chai", "Phí vận chuyển"]
ITEMS_EN = ["A4 paper", "Toner cartridge", "Software licence", "Office cleaning", "Delivery fee", "Desk chair"]
MONTHS_EN = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December"]


def _mst(rng: random.Random) -> str:
    from stdnum.vn import mst

    while True:
        body = f"{rng.randrange(1, 99):02d}{rng.randrange(10**7):07d}"
        check = mst.calc_check_digit(body)
        if len(check) == 1:
            return body + check


def _plain_amount(value: Decimal) -> str:
    """As ``portal.intake.fields`` writes an amount: no separators, no trailing zeros after the point."""
    value = value.normalize()
    return f"{value:f}"


def _shown(value: Decimal, style: str) -> str:
    """An amount as the document prints it: "1.100.000" (vi), "1,100,000" (en), "1,234.50" (USD)."""
    if style == "usd":
        return f"{value:,.2f}"
    text = f"{int(value):,}"
    return text.replace(",", ".") if style == "vi" else text


@dataclass
class Sample:
    """One invoice or receipt: its truth, its layout, and the ways it reaches the portal."""

    number: int
    layout: str
    lang: str  # vi | en
    truth: dict[str, str | None]
    lines: list[tuple[str, int, Decimal]]  # name, quantity, price
    buyer: tuple[str, str]
    style: str  # how amounts are printed: vi | en | usd
    xml_truth: dict = field(default_factory=dict)
    seed: int = 0

    def html(self) -> str:
        return RENDER[self.layout](self)

    def pdf(self) -> bytes:
        from weasyprint import HTML

        return HTML(string=self.html()).write_pdf()

    def scan(self, *, as_pdf: bool | None = None) -> tuple[bytes, str]:
        """The first page as a scanner or a phone gives it: (bytes, "image" | "pdf")."""
        return scan(self.pdf(), random.Random(self.seed * 7 + 1), as_pdf=as_pdf)

    def xml(self) -> bytes:
        from tests.data.einvoices import make_xml

        rng = random.Random(self.seed * 11 + 3)
        return make_xml(self.xml_truth, wrap=rng.random() < 0.5, namespace=rng.random() < 0.4,
                        currency="đ" if self.xml_truth["currency"] == "VND" and rng.random() < 0.3 else None,
                        float_amounts=rng.random() < 0.3)


def samples(count: int, seed: int = SEED) -> list[Sample]:
    """``count`` samples, the layouts in turn, from ``seed``."""
    rng = random.Random(seed)
    return [_sample(i, LAYOUTS[i % len(LAYOUTS)], rng) for i in range(count)]


def _sample(i: int, layout: str, rng: random.Random) -> Sample:
    english = layout in ("en_table", "en_letter") or (layout == "stacked" and rng.random() < 0.5)
    usd = layout == "en_table" and rng.random() < 0.6
    style = "usd" if usd else ("en" if english else "vi")
    rate = rng.choice((0, 5, 8, 10, 10)) if layout != "receipt" else rng.choice((8, 10))
    lines = []
    for _ in range(rng.randrange(1, 5)):
        price = (Decimal(rng.randrange(100, 50000)) / 100) if usd else Decimal(rng.randrange(5, 5000) * 1000)
        lines.append((rng.choice(ITEMS_EN if english else ITEMS), rng.randrange(1, 12), price))
    net = sum((q * p for _n, q, p in lines), Decimal(0))
    step = Decimal("0.01") if usd else Decimal(1)
    vat = (net * rate / 100).quantize(step, ROUND_HALF_UP)
    issued = date(2026, 1, 1) + timedelta(days=rng.randrange(0, 340))
    due = issued + timedelta(days=rng.choice((7, 14, 30))) if layout in ("en_table", "stacked", "en_letter") else None
    vietnamese_series = layout in ("vn_vat", "side_by_side") or (layout == "stacked" and not english)
    template, series = rng.choice("12"), f"{rng.choice('CK')}26T{rng.choice('ABCDEFGH')}{rng.choice('ABCDEFGH')}"
    if vietnamese_series:
        number = f"{rng.randrange(1, 10**6):08d}" if rng.random() < 0.5 else f"{rng.randrange(1, 10**6):07d}"
    elif layout == "receipt":
        number = str(rng.randrange(1000, 99999))
    else:
        number = f"INV-2026-{rng.randrange(1, 9999):04d}"
    seller = rng.choice(STORES if layout == "receipt" else SELLERS_EN if english else SELLERS)
    tax_code = _mst(rng) + (f"-{rng.randrange(1, 20):03d}" if rng.random() < 0.15 else "")
    truth = {"supplier_name": seller.upper() if layout == "receipt" else seller,  # as printed
             "supplier_tax_code": tax_code,
             "series": f"{template}{series}" if vietnamese_series else None, "invoice_number": number,
             "issue_date": issued.isoformat(), "due_date": due.isoformat() if due else None,
             "currency": "USD" if usd else "VND", "net": _plain_amount(net), "vat_rate": str(rate),
             "vat_amount": _plain_amount(vat), "total": _plain_amount(net + vat)}
    buyer = rng.choice(BUYERS)
    xml_truth = {"template": template, "series": series, "number": str(int(number)) if number.isdigit() else
                 str(rng.randrange(1, 10**6)), "date": issued.isoformat(), "currency": truth["currency"],
                 "seller": (seller, tax_code), "buyer": buyer,
                 "lines": [("1", n, "Cái", str(q), str(p), f"{rate}%") for n, q, p in lines],
                 "words": "Số tiền bằng chữ"}
    return Sample(i, layout, "en" if english else "vi", truth, lines, buyer, style, xml_truth,
                  seed=rng.randrange(10**9))


# --- the six layouts ------------------------------------------------------------------------------------------

CSS = """@page { size: A4; margin: 16mm 14mm; } body { font-family: 'DejaVu Sans'; font-size: 10.5pt; color: #111; }
table { border-collapse: collapse; width: 100%; } td, th { padding: 3pt 5pt; vertical-align: top; }
.items th, .items td { border: 0.6pt solid #555; } .num { text-align: right; } h1 { font-size: 17pt; margin: 4pt 0; }
.center { text-align: center; } .muted { color: #444; } .box { border: 0.8pt solid #333; padding: 6pt; }"""


def _page(body: str, css: str = "") -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><style>{CSS}{css}</style></head>"
            f"<body>{body}</body></html>")


def _items(s: Sample, head: tuple[str, ...]) -> str:
    rows = "".join(f"<tr><td>{i}</td><td>{escape(n)}</td><td class='num'>{q}</td>"
                   f"<td class='num'>{_shown(p, s.style)}</td><td class='num'>{_shown(q * p, s.style)}</td></tr>"
                   for i, (n, q, p) in enumerate(s.lines, start=1))
    return f"<table class='items'><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr>{rows}</table>"


def _vn_date(d: str) -> str:
    day = date.fromisoformat(d)
    return f"Ngày {day.day:02d} tháng {day.month:02d} năm {day.year}"


def _en_date(d: str, rng: random.Random) -> str:
    day = date.fromisoformat(d)
    return rng.choice((f"{day.day} {MONTHS_EN[day.month - 1]} {day.year}", f"{MONTHS_EN[day.month - 1]} {day.day}, "
                      f"{day.year}", f"{day.day:02d}/{day.month:02d}/{day.year}"))


def _amounts(s: Sample) -> tuple[str, str, str]:
    t = s.truth
    return tuple(_shown(Decimal(t[k]), s.style) for k in ("net", "vat_amount", "total"))  # type: ignore[return-value]


def vn_vat(s: Sample) -> str:
    """The usual Vietnamese VAT invoice: title, date line, symbol and number on the right, seller then buyer."""
    t, (net, vat, total) = s.truth, _amounts(s)
    return _page(f"""
<table><tr><td style='width:62%'><h1>HÓA ĐƠN GIÁ TRỊ GIA TĂNG</h1><div class='muted'>(VAT INVOICE)</div>
<div>{_vn_date(t['issue_date'])}</div></td>
<td><div>Ký hiệu (Serial): {t['series']}</div><div>Số (No.): {t['invoice_number']}</div></td></tr></table>
<hr><div>Đơn vị bán hàng (Seller): {escape(t['supplier_name'])}</div>
<div>Mã số thuế (Tax code): {t['supplier_tax_code']}</div>
<div>Địa chỉ (Address): 12 Nguyễn Huệ, Quận 1, TP. Hồ Chí Minh</div><div>Số tài khoản: 0071000123456</div><hr>
<div>Tên đơn vị (Company name): {escape(s.buyer[0])}</div><div>Mã số thuế (Tax code): {s.buyer[1]}</div>
<div>Hình thức thanh toán (Payment method): TM/CK</div><br>
{_items(s, ('STT', 'Tên hàng hóa, dịch vụ', 'Số lượng', 'Đơn giá', 'Thành tiền'))}
<table style='margin-top:6pt'><tr><td>Cộng tiền hàng (Sub total):</td><td class='num'>{net}</td></tr>
<tr><td>Thuế suất GTGT (VAT rate): {t['vat_rate']}%</td><td></td></tr>
<tr><td>Tiền thuế GTGT (VAT amount):</td><td class='num'>{vat}</td></tr>
<tr><td><b>Tổng cộng tiền thanh toán (Total payment):</b></td><td class='num'><b>{total}</b></td></tr></table>
<p>Số tiền viết bằng chữ (In words): theo giá trị trên.</p>""")


def en_table(s: Sample) -> str:
    """An English tax invoice: the company's name at the top, a table of labels and values, totals at the right."""
    t, (net, vat, total) = s.truth, _amounts(s)
    rng = random.Random(s.seed)
    code = "USD" if s.style == "usd" else "VND"
    return _page(f"""
<table><tr><td><h1>{escape(t['supplier_name'])}</h1><div>45 Le Loi, District 1, Ho Chi Minh City</div>
<div>Tax ID: {t['supplier_tax_code']}</div></td><td class='num'><h1>TAX INVOICE</h1></td></tr></table><br>
<table style='width:60%'><tr><td>Invoice number</td><td>{t['invoice_number']}</td></tr>
<tr><td>Invoice date</td><td>{_en_date(t['issue_date'], rng)}</td></tr>
<tr><td>Due date</td><td>{_en_date(t['due_date'], rng)}</td></tr><tr><td>Currency</td><td>{code}</td></tr></table>
<br><div class='box' style='width:55%; margin-left:40%'><b>Bill to</b><div>{escape(s.buyer[0])}</div>
<div>Tax code {s.buyer[1]}</div></div><br>
{_items(s, ('#', 'Description', 'Qty', 'Unit price', 'Amount'))}
<table style='width:50%; margin-left:50%; margin-top:8pt'><tr><td>Subtotal</td><td class='num'>{net}</td></tr>
<tr><td>VAT rate</td><td class='num'>{t['vat_rate']}%</td></tr><tr><td>VAT amount</td><td class='num'>{vat}</td></tr>
<tr><td><b>Total due</b></td><td class='num'><b>{total}</b></td></tr></table>""")


def receipt(s: Sample) -> str:
    """A shop's receipt on a narrow roll: name, tax code, number, date and time, lines, totals, cash."""
    t, (net, vat, total) = s.truth, _amounts(s)
    day = date.fromisoformat(t["issue_date"])
    cash = (Decimal(t["total"]) / 100000).to_integral_value(rounding="ROUND_CEILING") * 100000
    rows = "".join(f"<tr><td colspan='2'>{escape(n)}</td></tr><tr><td>{q} x {_shown(p, s.style)}</td>"
                   f"<td class='num'>{_shown(q * p, s.style)}</td></tr>" for n, q, p in s.lines)
    return _page(f"""
<div class='center' style='font-size:8pt'><b>{escape(t['supplier_name'])}</b></div>
<div class='center'>MST: {t['supplier_tax_code']}</div>
<div class='center'>ĐT: 028 3822 1234</div><hr><div class='center'><b>PHIẾU THU / RECEIPT</b></div>
<div>Số: {t['invoice_number']}</div><div>Ngày: {day.day:02d}/{day.month:02d}/{day.year} 14:{s.number % 60:02d}</div><hr>
<table>{rows}</table><hr><table><tr><td>Cộng tiền hàng:</td><td class='num'>{net}</td></tr>
<tr><td>Thuế GTGT {t['vat_rate']}%:</td><td class='num'>{vat}</td></tr>
<tr><td><b>Tổng cộng:</b></td><td class='num'><b>{total} đ</b></td></tr>
<tr><td>Tiền mặt:</td><td class='num'>{_shown(cash, s.style)}</td></tr>
<tr><td>Tiền thừa:</td><td class='num'>{_shown(cash - Decimal(t['total']), s.style)}</td></tr></table>
<hr><div class='center'>Cảm ơn quý khách!</div>""", "@page { size: 80mm 200mm; margin: 4mm; } body { font-size: 9pt; }")


def side_by_side(s: Sample) -> str:
    """A sales invoice with the seller and the buyer side by side, symbol, number and date on one line."""
    t, (net, vat, total) = s.truth, _amounts(s)
    day = date.fromisoformat(t["issue_date"])
    return _page(f"""
<h1 class='center'>HÓA ĐƠN BÁN HÀNG</h1>
<div class='center'>Ký hiệu: {t['series']} &nbsp;&nbsp; Số: {t['invoice_number']} &nbsp;&nbsp;
Ngày: {day.day:02d}/{day.month:02d}/{day.year}</div><br>
<table><tr><td style='width:50%'><b>Người bán (Seller)</b><div>{escape(t['supplier_name'])}</div>
<div>MST: {t['supplier_tax_code']}</div><div>Địa chỉ: 7 Lý Thường Kiệt, Hà Nội</div></td>
<td><b>Người mua (Buyer)</b><div>{escape(s.buyer[0])}</div><div>MST: {s.buyer[1]}</div>
<div>Địa chỉ: 20 Trần Phú, Đà Nẵng</div></td></tr></table><br>
{_items(s, ('STT', 'Hàng hóa', 'SL', 'Đơn giá', 'Thành tiền'))}
<table style='width:55%; margin-left:45%; margin-top:8pt'><tr><td>Cộng tiền hàng</td><td class='num'>{net}</td></tr>
<tr><td>Thuế suất</td><td class='num'>{t['vat_rate']}%</td></tr>
<tr><td>Tiền thuế GTGT</td><td class='num'>{vat}</td></tr>
<tr><td><b>Tổng tiền thanh toán</b></td><td class='num'><b>{total}</b></td></tr></table>""")


def stacked(s: Sample) -> str:
    """A modern layout: small labels above their values in a grid, totals in a box."""
    t, (net, vat, total) = s.truth, _amounts(s)
    rng = random.Random(s.seed)
    vi = s.lang == "vi"
    cells = [("Nhà cung cấp" if vi else "Supplier", escape(t["supplier_name"])),
             ("Mã số thuế" if vi else "Tax code", t["supplier_tax_code"]),
             ("Số hóa đơn" if vi else "Invoice number", t["invoice_number"]),
             ("Ngày hóa đơn" if vi else "Issue date", _vn_date(t["issue_date"])[5:] if vi else
              _en_date(t["issue_date"], rng)),
             ("Hạn thanh toán" if vi else "Due date", _en_date(t["due_date"], random.Random(1))
              if not vi else date.fromisoformat(t["due_date"]).strftime("%d/%m/%Y"))]
    if vi:
        cells.insert(2, ("Ký hiệu", t["series"]))
    grid = "".join(f"<td><div class='lab'>{a}</div><div class='val'>{b}</div></td>" for a, b in cells[:3])
    grid2 = "".join(f"<td><div class='lab'>{a}</div><div class='val'>{b}</div></td>" for a, b in cells[3:])
    labels = (("Cộng tiền hàng", "Thuế suất", "Tiền thuế GTGT", "Tổng cộng") if vi else
              ("Net amount", "VAT rate", "VAT amount", "Total amount"))
    return _page(f"""
<h1>{'HÓA ĐƠN' if vi else 'INVOICE'}</h1><table class='grid'><tr>{grid}</tr><tr>{grid2}</tr></table><br>
<div class='muted'>{'Khách hàng' if vi else 'Customer'}: {escape(s.buyer[0])} · {s.buyer[1]}</div><br>
{_items(s, ('#', 'Mô tả' if vi else 'Description', 'SL' if vi else 'Qty', 'Đơn giá' if vi else 'Price',
            'Thành tiền' if vi else 'Amount'))}
<div class='box' style='width:50%; margin-left:48%; margin-top:10pt'><table>
<tr><td>{labels[0]}</td><td class='num'>{net}</td></tr>
<tr><td>{labels[1]}</td><td class='num'>{t['vat_rate']}%</td></tr>
<tr><td>{labels[2]}</td><td class='num'>{vat}</td></tr>
<tr><td><b>{labels[3]}</b></td><td class='num'><b>{total} VND</b></td></tr>
</table></div>""", ".grid td { width: 33%; padding: 0 14pt 10pt 0; } .lab { font-size: 8pt; color: #555; } "
                   ".val { font-size: 11pt; }")


def en_letter(s: Sample) -> str:
    """An English invoice written as a letter: "From", "Invoice #", amounts followed by their currency."""
    t, (net, vat, total) = s.truth, _amounts(s)
    rng = random.Random(s.seed)
    return _page(f"""
<div class='num'><h1>INVOICE</h1></div>
<div>From: {escape(t['supplier_name'])}</div><div>VAT No: {t['supplier_tax_code']}</div>
<div>Address: 88 Hai Ba Trung, Hanoi</div><br>
<div>Invoice # {t['invoice_number']}</div><div>Date: {_en_date(t['issue_date'], rng)}</div>
<div>Payment due: {_en_date(t['due_date'], rng)}</div><br>
<div>Bill to: {escape(s.buyer[0])}, tax code {s.buyer[1]}</div><br>
{_items(s, ('No.', 'Item', 'Qty', 'Price', 'Amount'))}<br>
<table style='width:60%; margin-left:40%'><tr><td>Net amount</td><td class='num'>{net} VND</td></tr>
<tr><td>VAT ({t['vat_rate']}%)</td><td class='num'>{vat} VND</td></tr>
<tr><td><b>Total amount</b></td><td class='num'><b>{total} VND</b></td></tr></table>
<p class='muted'>Please pay by bank transfer within the due date.</p>""")


RENDER = {"vn_vat": vn_vat, "en_table": en_table, "receipt": receipt, "side_by_side": side_by_side,
          "stacked": stacked, "en_letter": en_letter}


# --- scanning ------------------------------------------------------------------------------------------------

def scan(pdf: bytes, rng: random.Random, *, as_pdf: bool | None = None) -> tuple[bytes, str]:
    """Page 1 of ``pdf`` as a scanner or a phone would give it: (bytes, "image" | "pdf").

    Rasterised at 200 dpi in grey, turned up to 3 degrees, noise and a slight blur, JPEG at quality 55-80;
    one in three is a phone photo instead: the page in perspective on a darker table, lit unevenly.
    """
    from PIL import Image, ImageFilter

    png = subprocess.run(["pdftoppm", "-png", "-r", "200", "-gray", "-f", "1", "-l", "1", "-singlefile", "-"],  # noqa: S607
                         input=pdf, capture_output=True, check=True).stdout
    page = Image.open(io.BytesIO(png)).convert("L")
    if rng.random() < 1 / 3:
        page = _photo(page, rng)
    else:
        page = page.rotate(rng.uniform(-3, 3), expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    noise = Image.effect_noise(page.size, rng.uniform(12, 22))
    page = Image.blend(page, noise, rng.uniform(0.06, 0.12)).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.7)))
    out = io.BytesIO()
    as_pdf = rng.random() < 0.5 if as_pdf is None else as_pdf
    if as_pdf:
        page.convert("RGB").save(out, "PDF", resolution=200.0, quality=rng.randrange(55, 80))
        return out.getvalue(), "pdf"
    page.convert("RGB").save(out, "JPEG", quality=rng.randrange(55, 80))
    return out.getvalue(), "image"


def _photo(page, rng: random.Random):  # noqa: ANN001, ANN202 - PIL images
    """The page photographed from a little off-centre: in perspective on a grey table, lit from one side."""
    from PIL import Image

    w, h = page.size
    margin = int(w * 0.06)
    table = Image.new("L", (w + 2 * margin, h + 2 * margin), rng.randrange(70, 120))
    table.paste(page, (margin, margin))
    tw, th = table.size
    j = [rng.uniform(0, margin * 0.8) for _ in range(8)]
    corners = [(j[0], j[1]), (tw - j[2], j[3]), (tw - j[4], th - j[5]), (j[6], th - j[7])]
    coeffs = _perspective([(0, 0), (tw, 0), (tw, th), (0, th)], corners)
    photo = table.transform((tw, th), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC, fillcolor=90)
    light = Image.linear_gradient("L").rotate(rng.choice((0, 90, 180, 270))).resize((tw, th))
    return Image.blend(photo, Image.eval(light, lambda v: 180 + v // 4), 0.18)


def _perspective(target: list[tuple[float, float]], source: list[tuple[float, float]]) -> list[float]:
    """The 8 coefficients PIL's PERSPECTIVE transform takes to map ``target`` corners from ``source``."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(target, source, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return _solve(rows, rhs)


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (8 unknowns: no need for NumPy)."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(n):
            if r != col:
                f = m[r][col] / m[col][col]
                m[r] = [x - f * y for x, y in zip(m[r], m[col], strict=True)]
    return [m[i][n] / m[i][i] for i in range(n)]
