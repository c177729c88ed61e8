"""Statement rendering: HTML to PDF, money formatted per locale, amounts in words.

Three small, pure helpers the statement code calls; none touches the database,
the request or the tenant, so they are safe in a job and in a request alike.

- ``html_to_pdf`` renders HTML with WeasyPrint under a URL fetcher that only
  serves the portal's own static files and ``data:`` URIs. A statement carries
  text a client or staff member typed; were any of it to reach the HTML as a
  tag, the renderer must not become a way to read ``file:///etc/passwd`` or to
  make requests to internal hosts (LFI/SSRF). So nothing else is ever fetched.
- ``format_money`` / ``minor_units`` follow ISO 4217 through Babel's CLDR data:
  amounts are integers in the currency's minor unit (VND has none, USD cents).
- ``amount_in_words`` writes the total the way invoices do, in Vietnamese or
  English, whatever the language of the request: the statement's language is
  passed in explicitly.
"""

from __future__ import annotations

import mimetypes
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote, urlsplit

from babel import Locale
from babel.numbers import format_currency, get_currency_precision
from weasyprint import HTML
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

__all__ = [
    "BASE_URL",
    "RenderError",
    "ResourceRefused",
    "StaticOnlyFetcher",
    "amount_in_words",
    "format_money",
    "html_to_pdf",
    "minor_units",
]

# The document's base URL: a host under the reserved ``.invalid`` TLD (RFC 6761), which
# never resolves, so ``/static/x.css`` in a template (what ``url_for('static', ...)``
# gives) becomes ``http://portal.invalid/static/x.css`` and maps to ``static_dir``.
BASE_URL = "http://portal.invalid/"
_BASE = urlsplit(BASE_URL)
STATIC_PREFIX = "/static/"


class RenderError(Exception):
    """The PDF could not be rendered (a resource it needs is missing or unreadable)."""


class ResourceRefused(RenderError):
    """The HTML asked for a resource outside the portal's static folder: never fetched."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"refused to fetch {url[:200]!r}: {reason}")
        self.url = url
        self.reason = reason


class StaticOnlyFetcher(URLFetcher):
    """A WeasyPrint URL fetcher that serves ``/static/...`` from one folder and ``data:`` URIs.

    Everything else (``http(s)`` to any other host, ``file:``, ``ftp:``, paths outside
    ``/static/``, ``..`` or an escaping symbolic link) raises ``ResourceRefused`` before any
    I/O. No network connection is ever opened: ``data:`` URIs are decoded in memory.
    """

    def __init__(self, static_dir: Path, *, fail_on_errors: bool = True) -> None:
        super().__init__(allowed_protocols={"data"}, allow_redirects=False, fail_on_errors=fail_on_errors)
        self.static_dir = Path(static_dir).resolve()

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> URLFetcherResponse:
        """Return the resource at ``url`` or raise ``ResourceRefused`` (or ``FileNotFoundError``)."""
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "data":
            # urllib's DataHandler decodes in memory; the parent refuses any other scheme.
            return super().fetch(url, headers)
        return self._static(url)

    def _static(self, url: str) -> URLFetcherResponse:
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != (_BASE.scheme, _BASE.netloc):
            raise ResourceRefused(url, "only /static/ files and data: URIs may be fetched")
        path = unquote(parts.path)
        if not path.startswith(STATIC_PREFIX):
            raise ResourceRefused(url, "only /static/ files and data: URIs may be fetched")
        relative = path[len(STATIC_PREFIX) :]
        segments = relative.split("/")
        if not relative or any(s in ("", ".", "..") for s in segments) or "\\" in relative or "\x00" in relative:
            raise ResourceRefused(url, "not a plain path inside the static folder")
        target = (self.static_dir / relative).resolve()
        if not target.is_relative_to(self.static_dir):  # a symbolic link pointing out
            raise ResourceRefused(url, "outside the static folder")
        if not target.is_file():
            raise FileNotFoundError(f"no static file {relative!r}")
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if content_type.startswith("text/"):
            content_type += "; charset=utf-8"
        return URLFetcherResponse(url, target.read_bytes(), {"Content-Type": content_type})


def html_to_pdf(html: str, *, static_dir: Path, strict: bool = True) -> bytes:
    """Render ``html`` to PDF bytes with WeasyPrint, fetching only ``/static/...`` and ``data:``.

    Relative URLs resolve against ``BASE_URL``, so ``/static/statement.css`` is read from
    ``static_dir / "statement.css"``. Text uses the system fonts through fontconfig (on
    Debian, DejaVu renders Vietnamese). With ``strict`` (the default) a refused URL raises
    ``ResourceRefused`` and a missing static file ``RenderError``, so a template mistake or
    injected markup stops the render; with ``strict=False`` such a resource is left out
    and WeasyPrint logs a warning, and it is still never fetched.
    """
    fetcher = StaticOnlyFetcher(static_dir, fail_on_errors=strict)
    try:
        return HTML(string=html, base_url=BASE_URL, url_fetcher=fetcher).write_pdf()
    except FatalURLFetchingError as exc:  # a BaseException in WeasyPrint: turned into ours
        cause = exc.__cause__
        if isinstance(cause, ResourceRefused):
            raise ResourceRefused(cause.url, cause.reason) from exc
        raise RenderError(f"{exc}: {cause}") from exc


# --- Money -----------------------------------------------------------------------------


def minor_units(currency: str) -> int:
    """The number of decimal places of ``currency``'s minor unit (ISO 4217 via CLDR): VND 0, USD 2."""
    return get_currency_precision(currency.upper())


def _check_amount(amount_minor: int) -> None:
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool):
        raise TypeError(f"amount_minor must be an int in the currency's minor unit, not {type(amount_minor).__name__}")


def format_money(amount_minor: int, currency: str, locale: str) -> str:
    """Format an integer amount of ``currency``'s minor unit for ``locale`` with Babel.

    ``format_money(1200000, "VND", "vi") == "1.200.000\\xa0₫"`` (CLDR puts a no-break space
    between number and symbol), ``format_money(120050, "USD", "en") == "$1,200.50"``.
    Exact: the amount is scaled, never rounded.
    """
    _check_amount(amount_minor)
    currency = currency.upper()
    return format_currency(Decimal(amount_minor).scaleb(-minor_units(currency)), currency, locale=locale)


# --- Amounts in words ------------------------------------------------------------------
#
# Vietnamese, in the style invoice software prints on "Số tiền viết bằng chữ":
#   - "nghìn" (the standard written form; "ngàn" is southern speech), "triệu", "tỷ";
#     above 999 tỷ the scale repeats: 10^12 is "một nghìn tỷ".
#   - a zero tens digit after hundreds is "linh" ("một trăm linh năm"), the written
#     standard in invoices; "lẻ" is the spoken, southern variant.
#   - a group of three after a higher non-zero group is read in full, hundreds
#     included: 1.005 is "một nghìn không trăm linh năm", 1.000.015 "một triệu
#     không trăm mười lăm"; a group that is all zeros is skipped.
#   - 1 after a tens digit of 2 or more is "mốt" ("hai mươi mốt"), 5 after any
#     tens digit is "lăm" ("mười lăm", "hai mươi lăm"), 4 stays "bốn" (not "tư").
#   - ten is "mười", tens of 2 and more "mươi".
_VI_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")


def _vi_triple(n: int, full: bool) -> list[str]:
    hundreds, tens, units = n // 100, n // 10 % 10, n % 10
    words: list[str] = []
    if hundreds or full:
        words += [_VI_DIGITS[hundreds], "trăm"]
    if tens == 0:
        if units:
            if words:
                words.append("linh")
            words.append(_VI_DIGITS[units])
    else:
        words += ["mười"] if tens == 1 else [_VI_DIGITS[tens], "mươi"]
        if units == 1 and tens >= 2:
            words.append("mốt")
        elif units == 5:
            words.append("lăm")
        elif units:
            words.append(_VI_DIGITS[units])
    return words


def _vi_below_billion(n: int, full: bool) -> list[str]:
    words: list[str] = []
    for value, scale in ((n // 1_000_000, "triệu"), (n // 1000 % 1000, "nghìn"), (n % 1000, "")):
        if value:
            words += _vi_triple(value, full)
            if scale:
                words.append(scale)
            full = True
    return words


def _vi_number(n: int) -> list[str]:
    if n == 0:
        return ["không"]
    if n < 1_000_000_000:
        return _vi_below_billion(n, full=False)
    billions, rest = divmod(n, 1_000_000_000)
    return [*_vi_number(billions), "tỷ", *_vi_below_billion(rest, full=True)]


# English: US style as on cheques, no "and" inside a number, hyphenated 21-99,
# short scale (a billion is 10^9).
# fmt: off
_EN_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)
_EN_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
# fmt: on
_EN_SCALES = ("", "thousand", "million", "billion", "trillion", "quadrillion", "quintillion")


def _en_triple(n: int) -> list[str]:
    hundreds, rest = divmod(n, 100)
    words = [_EN_ONES[hundreds], "hundred"] if hundreds else []
    if rest >= 20:
        words.append(_EN_TENS[rest // 10] + (f"-{_EN_ONES[rest % 10]}" if rest % 10 else ""))
    elif rest:
        words.append(_EN_ONES[rest])
    return words


def _en_number(n: int) -> list[str]:
    if n == 0:
        return ["zero"]
    groups: list[int] = []
    while n:
        n, group = divmod(n, 1000)
        groups.append(group)
    if len(groups) > len(_EN_SCALES):
        raise ValueError("amount too large to write in words")
    words: list[str] = []
    for index in range(len(groups) - 1, -1, -1):
        if groups[index]:
            words += _en_triple(groups[index])
            if _EN_SCALES[index]:
                words.append(_EN_SCALES[index])
    return words


# (major singular, major plural, minor singular, minor plural) per language and currency.
_UNITS: dict[str, dict[str, tuple[str, str, str, str]]] = {
    "vi": {"VND": ("đồng", "đồng", "", ""), "USD": ("đô la Mỹ", "đô la Mỹ", "xu", "xu")},
    "en": {
        "VND": ("Vietnamese dong", "Vietnamese dong", "", ""),
        "USD": ("US dollar", "US dollars", "cent", "cents"),
    },
}
_NUMBER = {"vi": _vi_number, "en": _en_number}
_AND = {"vi": "và", "en": "and"}
_MINUS = {"vi": "âm", "en": "minus"}


def amount_in_words(amount_minor: int, currency: str, locale: str) -> str:
    """The amount written out in the statement's language, capitalised, as on an invoice.

    ``amount_in_words(1200000, "VND", "vi") == "Một triệu hai trăm nghìn đồng"``,
    ``amount_in_words(120050, "USD", "en") == "One thousand two hundred US dollars and fifty cents"``.
    Languages: Vietnamese and English (any region, e.g. ``vi_VN``); currencies: VND and USD.
    Cents are written only when there are some; an amount below one dollar is only cents.
    Raises ``ValueError`` for another language or currency.
    """
    _check_amount(amount_minor)
    currency = currency.upper()
    language = Locale.parse(locale.replace("-", "_")).language
    if language not in _UNITS or currency not in _UNITS[language]:
        raise ValueError(f"no amount in words for {currency} in {locale!r}")
    major_one, major_many, minor_one, minor_many = _UNITS[language][currency]
    number = _NUMBER[language]
    sign = [_MINUS[language]] if amount_minor < 0 else []
    major, minor = divmod(abs(amount_minor), 10 ** minor_units(currency))
    words = list(sign)
    if major or not minor:
        words += [*number(major), major_one if major == 1 else major_many]
    if minor:
        if major:
            words.append(_AND[language])
        words += [*number(minor), minor_one if minor == 1 else minor_many]
    text = " ".join(words)
    return text[:1].upper() + text[1:]
