"""Reading an invoice's or a receipt's fields from the words on its pages and where they are.

Input: the words of the first pages with their boxes (``readers.Page.words``: from the PDF's text layer
or from Tesseract). Output: for each field found, its value written one way (an ISO date, an amount
without separators, a tax code as printed), a confidence in 0..1 and the box on the page it came from,
so that staff check it highlighted over the page instead of retyping it.

How: the words are put back into lines; a line holds labels (Vietnamese or English, compared without
diacritics: "Mã số thuế", "Tax code", "Tổng cộng tiền thanh toán", "Total"); the longest label wins where
two overlap ("total before VAT" is not "total" nor "VAT"). A field's value is what follows its label on
the line, or else what stands under the label on the next line, parsed as the field's type. The seller is
told from the buyer by place: words at or below the buyer's label, and not left of it, are the buyer's.
Confidence is the reader's own (Tesseract's word confidence; 1 for a text layer) lowered when a value
does not check out: a tax code whose check digit is wrong, totals that do not add up.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from stdnum.vn import mst

FIELDS = ("supplier_name", "supplier_tax_code", "series", "invoice_number", "issue_date", "due_date", "currency",
          "net", "vat_rate", "vat_amount", "total")
MONEY_FIELDS = frozenset({"net", "vat_amount", "total"})
CHECK_BELOW = 0.8  # a value less sure than this is marked for a second look

Word = Sequence  # (text, x0, y0, x1, y1, confidence 0..100)

# Labels written without diacritics, lower case (as ``plain`` writes text). Order does not matter: the
# longest label found on a line wins where two overlap.
LABELS: dict[str, tuple[str, ...]] = {
    "supplier_name": ("don vi ban hang", "don vi ban", "ten nguoi ban", "nguoi ban", "ten don vi ban",
                      "nha cung cap", "seller", "supplier", "vendor", "bill from", "sold by", "from"),
    "supplier_tax_code": ("ma so thue", "mst", "tax code", "tax id", "tax number", "vat no", "vat number",
                          "tin"),
    "series": ("ky hieu", "serial", "series", "symbol"),
    "invoice_number": ("so hoa don", "so", "invoice no", "invoice number", "invoice #", "receipt no",
                       "receipt number", "no", "number", "so phieu", "so bien lai"),
    "issue_date": ("ngay lap", "ngay hoa don", "ngay", "invoice date", "date of issue", "issue date", "date",
                   "issued"),
    "due_date": ("han thanh toan", "ngay den han", "due date", "payment due", "due"),
    "currency": ("loai tien", "don vi tien te", "currency"),
    "net": ("cong tien hang", "tien hang truoc thue", "thanh tien truoc thue", "tong tien truoc thue",
            "subtotal", "sub total", "sub-total", "net amount", "total before vat", "amount before tax",
            "total excluding vat", "net"),
    "vat_rate": ("thue suat gtgt", "thue suat", "vat rate", "tax rate"),
    "vat_amount": ("tien thue gtgt", "thue gtgt", "tien thue", "vat amount", "tax amount", "vat", "tax"),
    "total": ("tong cong tien thanh toan", "tong tien thanh toan", "tong cong", "tong thanh toan",
              "tong so tien", "total amount", "total payable", "grand total", "amount due", "total due",
              "total", "tong tien"),
}
# Whose labels start the buyer's part of the page (the seller's fields are not read there).
BUYER_LABELS = ("nguoi mua hang", "don vi mua hang", "ten nguoi mua", "nguoi mua", "khach hang", "buyer",
                "bill to", "billed to", "customer", "sold to")
# Labels of what is not a field, so that a short label inside them ("số" in "số tài khoản") is not read as one.
OTHER_LABELS = ("so tai khoan", "tai khoan", "account no", "account number", "stk", "so dien thoai", "dien thoai",
                "tel", "phone", "fax", "email", "dia chi", "address", "website", "tien mat", "cash", "change",
                "tien thua", "tien thoi", "so luong", "quantity", "qty", "don gia", "unit price",
                "ma so thue nguoi mua", "so tien viet bang chu", "bang chu", "in words", "hinh thuc thanh toan",
                "payment method", "page", "trang", "mau so", "form")
COMPANY_WORDS = ("cong ty", "co., ltd", "co. ltd", "company", "jsc", "corporation", "cua hang", "ho kinh doanh",
                 "doanh nghiep", "ltd", "llc", "inc")
CURRENCIES = {"vnd": "VND", "vnđ": "VND", "đ": "VND", "dong": "VND", "usd": "USD", "$": "USD", "us$": "USD",
              "eur": "EUR", "€": "EUR", "jpy": "JPY", "sgd": "SGD"}
MONTHS = {m: i for i, names in enumerate(
    (("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
     ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
     ("dec", "december")), start=1) for m in names}


@dataclass(frozen=True)
class Field:
    """One value read from the page: as written for people (``value``), how sure, and where."""

    value: str
    confidence: float
    page: int  # 1-based
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the page
    label: bool = True  # found after its label (False: found by its look alone, e.g. the company line)

    def as_dict(self) -> dict:
        return asdict(self)


def plain(text: str) -> str:
    """Lower case without diacritics, one character for one (so positions in both agree); đ is d."""
    out = []
    for char in unicodedata.normalize("NFC", text):
        base = unicodedata.normalize("NFD", char)[0] if char not in "đĐ" else "d"
        out.append(base.lower() if len(base.lower()) == 1 else base)
    return "".join(out)


# --- words into lines -------------------------------------------------------------------------------------

@dataclass
class Line:
    page: int
    words: list[Word]
    text: str = ""    # the words joined by single spaces (NFC)
    plain: str = ""   # the same, without diacritics: same length, same positions
    starts: tuple[int, ...] = ()  # where each word starts in ``text``

    def __post_init__(self) -> None:
        self.words.sort(key=lambda w: w[1])
        texts = [unicodedata.normalize("NFC", str(w[0])) for w in self.words]
        starts, at = [], 0
        for t in texts:
            starts.append(at)
            at += len(t) + 1
        self.text, self.starts = " ".join(texts), tuple(starts)
        self.plain = plain(self.text)

    @property
    def top(self) -> float:
        return min(w[2] for w in self.words)

    @property
    def bottom(self) -> float:
        return max(w[4] for w in self.words)

    def span(self, start: int, end: int) -> list[Word]:
        """The words that hold characters start..end of ``text``."""
        return [w for w, s in zip(self.words, self.starts, strict=True)
                if s < end and s + len(unicodedata.normalize("NFC", str(w[0]))) > start]


def lines_of(pages: Iterable[Sequence[Word]]) -> list[Line]:
    """The words of each page in lines, top to bottom: the reader's own lines (its seventh element), and
    lines side by side on one row joined into one (a label in one table cell, its value in the next).

    Two lines are one row when they overlap by most of the smaller one's height and are of like height
    (a title beside two small lines stays apart from them).
    """
    lines: list[Line] = []
    for number, words in enumerate(pages, start=1):
        own: dict[int, list[Word]] = {}
        for word in words:
            if str(word[0]).strip():
                own.setdefault(int(word[6]) if len(word) > 6 else 0, []).append(word)
        rows: list[list[Word]] = []
        for group in sorted(own.values(), key=lambda g: min(w[2] for w in g)):
            top, bottom = min(w[2] for w in group), max(w[4] for w in group)
            for row in rows:
                r_top, r_bottom = min(w[2] for w in row), max(w[4] for w in row)
                overlap = min(bottom, r_bottom) - max(top, r_top)
                smaller, larger = sorted((bottom - top, r_bottom - r_top))
                if smaller > 0 and overlap >= 0.6 * smaller and larger <= 1.6 * smaller:
                    row.extend(group)
                    break
            else:
                rows.append(list(group))
        lines.extend(Line(number, row) for row in sorted(rows, key=lambda r: min(w[2] for w in r)))
    return lines


GAP = 2.2  # a gap wider than this many characters between two words parts two cells (a space is about one)


def cells(line: Line) -> list[tuple[int, int]]:
    """Where the cells of a line are in its text: runs of words with no wide gap between them."""
    widths = sorted((w[3] - w[1]) / max(1, len(str(w[0]))) for w in line.words)
    gap = GAP * widths[len(widths) // 2] if widths else 0.0
    out, start = [], 0
    for i in range(1, len(line.words) + 1):
        if i == len(line.words) or line.words[i][1] - line.words[i - 1][3] > gap:
            end = line.starts[i - 1] + len(unicodedata.normalize("NFC", str(line.words[i - 1][0])))
            out.append((line.starts[start], end))
            start = i
    return out


# --- values by type ----------------------------------------------------------------------------------------

# An amount: grouped in thousands ("1.100.000", "1,234.56", "12 000 000") or not ("84000.0"); never a rate.
MONEY = re.compile(r"(?<![\d.,])(?:\d{1,3}(?:([.,  ])\d{3})(?:\1\d{3})*(?:[.,]\d{1,2})?(?!\d)"
                   r"|\d+(?:[.,]\d{1,2})?(?![\d.,]*\d))(?!\s*%)")
DATE_NUMERIC = re.compile(r"\b(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{4})\b|\b(\d{4})-(\d{2})-(\d{2})\b")
DATE_VN = re.compile(r"(?:ngay\s*)?(\d{1,2})\s*thang\s*(\d{1,2})\s*nam\s*(\d{4})")
DATE_WORDS = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+([a-z]{3,9})\.?,?\s+(\d{4})\b"
                        r"|\b([a-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b")
RATE = re.compile(r"(\d{1,2}(?:[.,]\d)?)\s*%")
TAX_CODE = re.compile(r"(?<![\d])(\d{10})(?:\s*-\s*(\d{3}))?(?![\d])|(?<![\d])((?:\d\s?){10})(?![\d])")
SERIES = re.compile(r"\b([0-9]?[ck]\d{2}[a-z]{3})\b|\b([a-z]{1,2}/\d{2}[a-z]?)\b")
NUMBER = re.compile(r"[a-z0-9][a-z0-9\-/.]*\d[a-z0-9\-/]*|\d+")


@dataclass(frozen=True)
class Found:
    value: str
    start: int  # in the text searched
    end: int


def money(text: str) -> Found | None:
    """The first amount: "1.100.000", "1,100,000", "1 100 000", "1,234.56", "84000.0" → "1100000", "1234.56"."""
    match = MONEY.search(text)
    if not match:
        return None
    raw = match[0].replace("\u00a0", " ")
    last = max(raw.rfind("."), raw.rfind(","))
    if last >= 0 and len(raw) - last - 1 in (1, 2):  # the last separator is the decimal point
        whole, cents = re.sub(r"\D", "", raw[:last]), raw[last + 1:]
        value = Decimal(f"{whole or 0}.{cents}")
    else:
        value = Decimal(re.sub(r"\D", "", raw))
    return Found(_amount(value), match.start(), match.end())


def _amount(value: Decimal) -> str:
    value = value.normalize()
    return f"{value:f}" if value == value.to_integral() or value.as_tuple().exponent < 0 else str(value)


def when(text: str) -> Found | None:
    """The first date, as ISO: 05/11/2026 (day first), 2026-11-05, "ngày 05 tháng 11 năm 2026", "5 Nov 2026"."""
    candidates = []
    for match in DATE_NUMERIC.finditer(text):
        d, m, y = (match[1], match[2], match[3]) if match[1] else (match[6], match[5], match[4])
        candidates.append((match.start(), match.end(), int(y), int(m), int(d)))
    for match in DATE_VN.finditer(text):
        candidates.append((match.start(), match.end(), int(match[3]), int(match[2]), int(match[1])))
    for match in DATE_WORDS.finditer(text):
        day, month, year = (match[1], match[2], match[3]) if match[1] else (match[5], match[4], match[6])
        if month[:3] in MONTHS or month in MONTHS:
            candidates.append((match.start(), match.end(), int(year), MONTHS.get(month, MONTHS.get(month[:3], 0)),
                               int(day)))
    for start, end, year, month, day in sorted(candidates):
        try:
            return Found(date(year, month, day).isoformat(), start, end)
        except ValueError:
            continue
    return None


def rate(text: str) -> Found | None:
    match = RATE.search(text)
    if not match:
        return None
    return Found(_amount(Decimal(match[1].replace(",", "."))), match.start(), match.end())


def tax_code(text: str) -> Found | None:
    """A Vietnamese tax code: 10 digits, or 10 and a 3-digit branch ("0101234567-001")."""
    match = TAX_CODE.search(text)
    if not match:
        return None
    value = (match[1] + (f"-{match[2]}" if match[2] else "")) if match[1] else re.sub(r"\s", "", match[3])
    return Found(value, match.start(), match.end())


def series(text: str) -> Found | None:
    match = SERIES.search(text)
    return Found(match[0].upper(), match.start(), match.end()) if match else None


def number(text: str) -> Found | None:
    match = NUMBER.search(text)
    return Found(match[0].upper().rstrip(".-/"), match.start(), match.end()) if match else None


def currency(text: str) -> Found | None:
    for match in re.finditer(r"[a-zđ$€]+\$?|\$|€", text):
        code = CURRENCIES.get(match[0])
        if code:
            return Found(code, match.start(), match.end())
    return None


def party_name(text: str) -> Found | None:
    """A name: what is there, without the punctuation around it or a trailing "(Seller)"-like gloss."""
    match = re.search(r"[^\s:.\-–(][^:]*?(?=\s*(?:\(|$))", text)
    if not match or len(match[0]) < 3:
        return None
    return Found(match[0].strip(), match.start(), match.start() + len(match[0].strip()))


PARSERS = {"supplier_name": party_name, "supplier_tax_code": tax_code, "series": series,
           "invoice_number": number, "issue_date": when, "due_date": when, "currency": currency,
           "net": money, "vat_rate": rate, "vat_amount": money, "total": money}


# --- labels on lines ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Label:
    field: str  # a field's name, or "buyer"
    line: Line
    start: int
    end: int

    @property
    def box(self) -> tuple[float, float, float, float]:
        return _box(self.line.span(self.start, self.end))


def _pattern(phrase: str) -> re.Pattern:
    return re.compile(r"(?<![a-z0-9])" + re.escape(phrase) + r"(?![a-z0-9])")


_LABELS = sorted(((field, phrase, _pattern(phrase)) for field, phrases in
                  [*LABELS.items(), ("buyer", BUYER_LABELS), ("other", OTHER_LABELS)] for phrase in phrases),
                 key=lambda item: -len(item[1]))


def labels_on(line: Line) -> list[Label]:
    """The labels on a line, longest first where two overlap, in reading order."""
    taken: list[Label] = []
    for field, _phrase, pattern in _LABELS:
        for match in pattern.finditer(line.plain):
            if all(match.end() <= t.start or match.start() >= t.end for t in taken):
                taken.append(Label(field, line, match.start(), match.end()))
    return sorted(taken, key=lambda t: t.start)


def _box(words: Iterable[Word]) -> tuple[float, float, float, float]:
    words = list(words)
    if not words:
        return (0.0, 0.0, 0.0, 0.0)
    return (min(w[1] for w in words), min(w[2] for w in words), max(w[3] for w in words), max(w[4] for w in words))


def _sureness(words: Iterable[Word]) -> float:
    confidences = [float(w[5]) for w in words]
    return round(min(confidences) / 100, 3) if confidences else 0.0


_GLOSS = re.compile(r"[\s:.\-–]*(?:\([^)]{0,24}\)[\s:.\-–]*)*")  # ": ", " (No.): ", "(Serial):"


def _after(label: Label, labels: list[Label]) -> tuple[Line, int, int]:
    """Where a label's value is written on its own line: after it (and its gloss), up to the next label."""
    line = label.line
    gloss = _GLOSS.match(line.plain, label.end)
    start = gloss.end() if gloss else label.end
    return line, start, next((t.start for t in labels if t.start >= start), len(line.text))


def _under(label: Label, lines: list[Line], index: int) -> tuple[Line, int, int] | None:
    """The value written under a label, in the next line's cell that overlaps the label's column."""
    x0, _y0, x1, y1 = label.box
    for below in lines[index + 1:index + 3]:
        if below.page != label.line.page or below.top - y1 > 0.05:
            return None
        for start, end in cells(below):
            words = below.span(start, end)
            if words[0][1] < x1 and words[-1][3] > x0:
                return below, start, end
    return None


def _read(field: str, line: Line, start: int, end: int, *, by_label: bool = True) -> Field | None:
    # Names keep their diacritics; a currency its "đ"; the rest is read without them.
    searched = (line.text if field == "supplier_name" else line.text.lower() if field == "currency"
                else line.plain)[start:end]
    found = PARSERS[field](searched)
    if found is None:
        return None
    a, b = start + found.start, start + found.end
    words = line.span(a, b)
    value = found.value if field != "supplier_name" else line.text[a:b]
    return Field(value, _sureness(words), line.page, _box(words), by_label)


def _in_buyer_part(line: Line, start: int, buyer: Label | None) -> bool:
    if buyer is None:
        return False
    bx0, by0, _bx1, _by1 = buyer.box
    words = line.span(start, start + 1)
    x0 = words[0][1] if words else 1.0
    return (line.page, line.top) >= (buyer.line.page, by0 - 0.003) and x0 >= bx0 - 0.02


def read_fields(pages: Iterable[Sequence[Word]]) -> dict[str, Field]:
    """The invoice's or receipt's fields found on ``pages`` (each a list of words with boxes), by name."""
    lines = lines_of(pages)
    on_line = [labels_on(line) for line in lines]
    buyer = next((t for labels in on_line for t in labels if t.field == "buyer"), None)
    found: dict[str, Field] = {}
    for index, (line, labels) in enumerate(zip(lines, on_line, strict=True)):
        for label in labels:
            if label.field in ("buyer", "other") or label.field in found:
                continue
            party = label.field in ("supplier_name", "supplier_tax_code")
            if party and _in_buyer_part(line, label.start, buyer):
                continue
            value = _read(label.field, *_after(label, labels))
            if value is None and label.end - label.start >= 5 and (under := _under(label, lines, index)):
                value = _read(label.field, *under)
            if value is not None:
                found[label.field] = value
    _by_look(lines, buyer, found)
    _check(found)
    return found


def _by_look(lines: list[Line], buyer: Label | None, found: dict[str, Field]) -> None:
    """Fields with no label nearby, found by how they look: the seller's company line at the top, a
    Vietnamese date line ("Ngày 05 tháng 11 năm 2026"), the currency written beside an amount."""
    if "supplier_name" not in found:
        for line in lines[:15]:
            for start, end in cells(line):
                cell = line.plain[start:end]
                if any(_pattern(w).search(cell) for w in COMPANY_WORDS) and not _in_buyer_part(line, start, buyer) \
                        and not any(t.start < end and t.end > start for t in labels_on(line)):
                    words = line.span(start, end)
                    found["supplier_name"] = Field(line.text[start:end], round(_sureness(words) * 0.8, 3),
                                                   line.page, _box(words), False)
                    break
            if "supplier_name" in found:
                break
    if "issue_date" not in found:
        for line in lines:
            if (value := _read("issue_date", line, 0, len(line.text), by_label=False)) is not None:
                found["issue_date"] = Field(value.value, value.confidence * 0.9, value.page, value.box, False)
                break
    if "vat_rate" not in found and (vat := found.get("vat_amount")) is not None:  # "VAT (10%): 100,000"
        line = next(line for line in lines if line.page == vat.page and line.top <= vat.box[1] <= line.bottom)
        if (value := _read("vat_rate", line, 0, len(line.text), by_label=False)) is not None:
            found["vat_rate"] = value
    if "currency" not in found and (anchor := found.get("total")) is not None:
        for line in lines:
            beside = line.page == anchor.page and line.top <= anchor.box[3] and line.bottom >= anchor.box[1]
            if beside and (value := _read("currency", line, 0, len(line.text), by_label=False)) is not None:
                found["currency"] = value
                return
        # Nothing says which: an invoice issued in Vietnam is in đồng unless it says otherwise.
        found["currency"] = Field("VND", 0.7, anchor.page, anchor.box, False)


def _check(found: dict[str, Field]) -> None:
    """Lower the confidence of values that do not check out against the rules or each other."""
    def lower(name: str, factor: float) -> None:
        if name in found:
            f = found[name]
            found[name] = Field(f.value, round(f.confidence * factor, 3), f.page, f.box, f.label)

    code = found.get("supplier_tax_code")
    if code is not None and not mst.is_valid(code.value):
        lower("supplier_tax_code", 0.4)
    amounts = {name: Decimal(found[name].value) for name in MONEY_FIELDS if name in found}
    if len(amounts) == 3 and amounts["net"] + amounts["vat_amount"] != amounts["total"]:
        for name in MONEY_FIELDS:
            lower(name, 0.6)
    if "vat_rate" in found and {"net", "vat_amount"} <= amounts.keys():
        try:
            expected = amounts["net"] * Decimal(found["vat_rate"].value) / 100
        except InvalidOperation:
            return
        if abs(expected - amounts["vat_amount"]) > 1:
            lower("vat_rate", 0.7)
            lower("vat_amount", 0.8)


def needs_check(field: Field) -> bool:
    return field.confidence < CHECK_BELOW


def invoice_key(found: dict[str, Field]) -> str | None:
    """The invoice's identity (``einvoice.invoice_key``) from fields read well enough to trust for it."""
    from portal.intake.einvoice import invoice_key as key

    def sure(name: str) -> str | None:
        f = found.get(name)
        return f.value if f is not None and not needs_check(f) else None

    if found.get("series") is not None and sure("series") is None:
        return None  # a symbol read badly would make another invoice of the same number look the same
    return key(sure("supplier_tax_code"), sure("series"), sure("invoice_number"))
