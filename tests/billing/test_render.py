"""Statement rendering: PDF text and fonts, the fetcher's refusals, money and amounts in words.

Expected values are worked out by hand from the rules (CLDR patterns, ISO 4217
exponents, the Vietnamese reading rules in render.py's comment, A5/A4 in points),
not read back from the code under test. The PDF is read with poppler's tools, a
run-time package of the portal (Makefile RUN_PACKAGES).
"""

from __future__ import annotations

import re
import subprocess
import threading
import unicodedata
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from portal.billing.render import (
    RenderError,
    ResourceRefused,
    StaticOnlyFetcher,
    amount_in_words,
    format_money,
    html_to_pdf,
    minor_units,
)

# A5 is 148 x 210 mm, A4 210 x 297 mm; 1 pt = 25.4/72 mm.
A5_POINTS = "419.528 x 595.276"
A4_POINTS = "595.276 x 841.89"
NBSP = "\u00a0"  # CLDR separates number and symbol with a no-break space in Vietnamese


def pdf_text(pdf: bytes) -> str:
    return subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()


def pdf_info(pdf: bytes, tool: str = "pdfinfo") -> str:
    return subprocess.run([tool, "-"], input=pdf, capture_output=True, check=True).stdout.decode()


def page_size(pdf: bytes) -> str:
    match = re.search(r"Page size:\s+([\d.]+ x [\d.]+) pts", pdf_info(pdf))
    assert match, "pdfinfo printed no page size"
    return match[1]


def page(body: str, head: str = "") -> str:
    return f'<!doctype html><html lang="vi"><head><meta charset="utf-8">{head}</head><body>{body}</body></html>'


class CountingServer:
    """An HTTP server on loopback that counts every request made to it (it should get none)."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        requests = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                requests.append(self.path)
                body = b"@page { size: A3 }" if self.path.endswith(".css") else b"secret"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[CountingServer]:
    s = CountingServer()
    yield s
    s.stop()


@pytest.fixture
def static_dir(tmp_path: Path) -> Path:
    static = tmp_path / "static"
    (static / "css").mkdir(parents=True)
    (static / "css" / "statement.css").write_text("@page { size: A5 } body { font-family: 'DejaVu Sans'; }")
    return static


# --- The PDF ------------------------------------------------------------------------------

TITLE = "Bảng kê tháng 11/2026"
TOTAL = "Tổng cộng: 1.200.000 ₫"


def test_vietnamese_text_survives_into_the_pdf(static_dir: Path) -> None:
    # The amount as the statement writes it: format_money's no-break space before the symbol.
    total = f"Tổng cộng: {format_money(1_200_000, 'VND', 'vi')}"
    html = page(
        f"<p>{TITLE} — {total}</p><p>{amount_in_words(1_200_000, 'VND', 'vi')}</p>",
        head="<style>body { font-family: 'DejaVu Sans'; font-size: 10pt }</style>",
    )
    pdf = html_to_pdf(html, static_dir=static_dir)

    assert pdf.startswith(b"%PDF-")
    # pdftotext writes the characters as drawn: composed (NFC) Vietnamese, the dash kept; the
    # no-break space comes out as a space.
    lines = pdf_text(pdf).replace(NBSP, " ").splitlines()
    assert f"{TITLE} — {TOTAL}" in lines
    assert "Một triệu hai trăm nghìn đồng" in lines
    assert all(unicodedata.is_normalized("NFC", line) for line in lines)
    # Drawn with DejaVu (embedded, subset), not a fallback font missing the Vietnamese glyphs.
    fonts = pdf_info(pdf, "pdffonts")
    assert re.search(r"\+DejaVu-?Sans\s.*\byes\s+yes\s+yes\b", fonts), fonts


def test_static_stylesheet_is_applied(static_dir: Path) -> None:
    link = '<link rel="stylesheet" href="/static/css/statement.css">'
    with_css = html_to_pdf(page("<p>x</p>", link), static_dir=static_dir)
    without = html_to_pdf(page("<p>x</p>"), static_dir=static_dir)
    assert page_size(with_css) == A5_POINTS
    assert page_size(without) == A4_POINTS  # WeasyPrint's default page


def test_relative_static_url_and_data_uri_are_served(static_dir: Path) -> None:
    (static_dir / "dot.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>')
    # strict: any refused or missing resource would raise, so a render means each one was served
    pdf = html_to_pdf(
        page(
            '<img src="static/dot.svg"><img src="data:image/svg+xml,'
            '%3Csvg xmlns=%22http://www.w3.org/2000/svg%22 width=%224%22 height=%224%22/%3E">',
            '<link rel="stylesheet" href="static/css/statement.css">',
        ),
        static_dir=static_dir,
    )
    assert page_size(pdf) == A5_POINTS


def test_fetcher_serves_static_files_and_data_uris(static_dir: Path) -> None:
    fetcher = StaticOnlyFetcher(static_dir)
    css = fetcher.fetch("http://portal.invalid/static/css/statement.css")
    assert css.read().startswith(b"@page { size: A5 }")
    assert css.content_type == "text/css"
    assert fetcher.fetch("data:text/plain;base64,aGk=").read() == b"hi"


def test_missing_static_file_fails_the_render(static_dir: Path) -> None:
    with pytest.raises(RenderError) as raised:
        html_to_pdf(page('<img src="/static/nope.png">'), static_dir=static_dir)
    assert not isinstance(raised.value, ResourceRefused)
    assert "nope.png" in str(raised.value)


# --- What is never fetched ----------------------------------------------------------------

REFUSED = {
    "img over http": '<img src="{server}/pixel.png">',
    "stylesheet over http": '<link rel="stylesheet" href="{server}/evil.css">',
    "@import over http": "<style>@import url({server}/evil.css);</style>",
    "font over http": "<style>@font-face {{ font-family: x; src: url({server}/f.ttf) }} p {{ font-family: x }}</style>",
    "background over http": '<div style="background: url({server}/bg.png)">x</div>',
    "attachment over http": '<link rel="attachment" href="{server}/a.txt">',
    "object over http": '<object data="{server}/o.svg" type="image/svg+xml"></object>',
    "base href to the server": '<base href="{server}/static/"><img src="pixel.png">',
    "static path on another host": '<link rel="stylesheet" href="{server}/static/css/statement.css">',
    "file passwd": '<img src="file:///etc/passwd">',
    "file stylesheet": '<link rel="stylesheet" href="file://{outside}">',
    "dot-dot out of static": '<link rel="stylesheet" href="/static/../outside.css">',
    "encoded dot-dot": '<link rel="stylesheet" href="/static/%2e%2e/outside.css">',
    "symlink out of static": '<link rel="stylesheet" href="/static/link.css">',
    "ftp": '<img src="ftp://127.0.0.1/x.png">',
}


@pytest.fixture
def outside(static_dir: Path) -> Path:
    """A stylesheet next to (not inside) the static folder, and a symbolic link to it from inside."""
    evil = static_dir.parent / "outside.css"
    evil.write_text("@page { size: A3 }")
    (static_dir / "link.css").symlink_to(evil)
    return evil


@pytest.mark.parametrize("snippet", REFUSED.values(), ids=REFUSED.keys())
def test_refused_resource_stops_the_render_and_is_never_fetched(
    snippet: str, server: CountingServer, static_dir: Path, outside: Path
) -> None:
    html = page(snippet.format(server=server.url, outside=outside))
    with pytest.raises(ResourceRefused) as raised:
        html_to_pdf(html, static_dir=static_dir)
    assert "refused to fetch" in str(raised.value)
    assert server.requests == []


def test_lenient_render_leaves_refused_resources_out(server: CountingServer, static_dir: Path, outside: Path) -> None:
    html = page(
        "<p>Tổng cộng</p>" + "".join(s.format(server=server.url, outside=outside) for s in REFUSED.values())
    )
    pdf = html_to_pdf(html, static_dir=static_dir, strict=False)
    assert server.requests == []
    assert page_size(pdf) == A4_POINTS  # no A3 stylesheet was read, from the server or outside static
    text = pdf_text(pdf)
    assert "Tổng cộng" in text
    assert "root:" not in text and "secret" not in text


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/static/css/statement.css",
        "https://portal.invalid/static/css/statement.css",  # same host, another scheme
        "http://portal.invalid/statement.css",
        "http://portal.invalid/static/",
        "http://portal.invalid/static/css//statement.css",
        "http://portal.invalid/static/css%2F..%2F..%2Foutside.css",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
        "/static/css/statement.css",  # relative: never reaches the fetcher unresolved
    ],
)
def test_fetcher_refuses_before_any_io(url: str, static_dir: Path) -> None:
    with pytest.raises(ResourceRefused):
        StaticOnlyFetcher(static_dir).fetch(url)


# --- Money --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "exponent"), [("VND", 0), ("USD", 2), ("usd", 2), ("JPY", 0), ("KWD", 3)]
)
def test_minor_units_are_iso_4217_exponents(currency: str, exponent: int) -> None:
    assert minor_units(currency) == exponent


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        (1_200_000, "VND", "vi", f"1.200.000{NBSP}₫"),
        (120_050, "USD", "en", "$1,200.50"),
        (120_050, "USD", "vi", f"1.200,50{NBSP}US$"),
        (1_200_000, "VND", "en", "₫1,200,000"),
        (1_200_000, "VND", "vi_VN", f"1.200.000{NBSP}₫"),
        (5, "USD", "en", "$0.05"),
        (100, "USD", "en", "$1.00"),
        (0, "VND", "vi", f"0{NBSP}₫"),
        (-5_000, "VND", "vi", f"-5.000{NBSP}₫"),
        (999_999_999_999, "VND", "vi", f"999.999.999.999{NBSP}₫"),
    ],
)
def test_format_money(amount: int, currency: str, locale: str, expected: str) -> None:
    assert format_money(amount, currency, locale) == expected


@pytest.mark.parametrize("amount", [1.5, True, "100"])
def test_amounts_must_be_integers_of_the_minor_unit(amount: object) -> None:
    with pytest.raises(TypeError):
        format_money(amount, "USD", "en")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        amount_in_words(amount, "USD", "en")  # type: ignore[arg-type]


# --- Amounts in words ---------------------------------------------------------------------

# Read by hand with the rules: "nghìn"; "linh" for a zero tens digit after hundreds; a group
# after a higher non-zero group read in full ("không trăm"); all-zero groups skipped; "mốt"
# after tens >= 2, "lăm" after any tens, "mười" for ten.
VI_VND = [
    (0, "Không đồng"),
    (5, "Năm đồng"),
    (10, "Mười đồng"),
    (11, "Mười một đồng"),
    (14, "Mười bốn đồng"),
    (15, "Mười lăm đồng"),
    (21, "Hai mươi mốt đồng"),
    (24, "Hai mươi bốn đồng"),
    (25, "Hai mươi lăm đồng"),
    (105, "Một trăm linh năm đồng"),
    (110, "Một trăm mười đồng"),
    (111, "Một trăm mười một đồng"),
    (1_005, "Một nghìn không trăm linh năm đồng"),
    (2_021, "Hai nghìn không trăm hai mươi mốt đồng"),
    (10_000, "Mười nghìn đồng"),
    (205_000, "Hai trăm linh năm nghìn đồng"),
    (1_000_015, "Một triệu không trăm mười lăm đồng"),
    (1_000_100, "Một triệu một trăm đồng"),
    (1_001_000, "Một triệu không trăm linh một nghìn đồng"),
    (1_050_000, "Một triệu không trăm năm mươi nghìn đồng"),
    (1_200_000, "Một triệu hai trăm nghìn đồng"),
    (1_000_000_000, "Một tỷ đồng"),
    (1_000_000_001, "Một tỷ không trăm linh một đồng"),
    (1_000_500_000, "Một tỷ năm trăm nghìn đồng"),
    (21_345_678_915, "Hai mươi mốt tỷ ba trăm bốn mươi lăm triệu sáu trăm bảy mươi tám nghìn chín trăm mười lăm đồng"),
    (1_000_000_000_000, "Một nghìn tỷ đồng"),
    (-5_000, "Âm năm nghìn đồng"),
]


@pytest.mark.parametrize(("amount", "expected"), VI_VND)
def test_vietnamese_dong_in_words(amount: int, expected: str) -> None:
    assert amount_in_words(amount, "VND", "vi") == expected


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        (120_050, "USD", "en", "One thousand two hundred US dollars and fifty cents"),
        (120_000, "USD", "en", "One thousand two hundred US dollars"),
        (100, "USD", "en", "One US dollar"),
        (101, "USD", "en", "One US dollar and one cent"),
        (1, "USD", "en", "One cent"),
        (0, "USD", "en", "Zero US dollars"),
        (1_052_199, "USD", "en_US", "Ten thousand five hundred twenty-one US dollars and ninety-nine cents"),
        (1_000_001_500, "USD", "en", "Ten million fifteen US dollars"),
        (1_200_000, "VND", "en", "One million two hundred thousand Vietnamese dong"),
        (1_000_015, "VND", "en", "One million fifteen Vietnamese dong"),
        (1_000_000_000, "VND", "en", "One billion Vietnamese dong"),
        (120_050, "USD", "vi", "Một nghìn hai trăm đô la Mỹ và năm mươi xu"),
        (100_500, "USD", "vi_VN", "Một nghìn không trăm linh năm đô la Mỹ"),
        (21, "USD", "vi", "Hai mươi mốt xu"),
        (-120_050, "USD", "en", "Minus one thousand two hundred US dollars and fifty cents"),
    ],
)
def test_amounts_in_words_across_languages_and_currencies(
    amount: int, currency: str, locale: str, expected: str
) -> None:
    assert amount_in_words(amount, currency, locale) == expected


@pytest.mark.parametrize(("currency", "locale"), [("EUR", "vi"), ("VND", "fr"), ("USD", "de_DE")])
def test_amounts_in_words_refuse_what_they_cannot_write(currency: str, locale: str) -> None:
    with pytest.raises(ValueError, match="no amount in words"):
        amount_in_words(100, currency, locale)
