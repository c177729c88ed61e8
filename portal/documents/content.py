"""What an uploaded file is, decided by its content (never by its name), and names for display.

Every refusal is a ``Refused`` with a stable ``code``, an English ``message`` telling
the user what was wrong and what to do, and ``params`` for it. Messages are
``%(name)s`` templates marked with ``N_`` for extraction; callers translate them
(``gettext(exc.message, **exc.params)``). ``exc.text`` is the English sentence.

This module does not import Flask: services, the CLI, workers and the benchmark use it.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import struct
import unicodedata
import zlib
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import magic
from stream_unzip import (
    EncryptionMechanismNotAllowed,
    MissingPasswordError,
    PasswordError,
    UnzipError,
    stream_unzip,
)

from portal.i18n import N_

CATEGORIES = ("invoice", "receipt", "bank_statement", "payroll_input", "contract", "payslip", "other")
# English labels, marked for the catalogue; shown translated (``_(CATEGORY_LABELS[c])``).
CATEGORY_LABELS = {
    "invoice": N_("Invoice"),
    "receipt": N_("Receipt"),
    "bank_statement": N_("Bank statement"),
    "payroll_input": N_("Payroll input"),
    "contract": N_("Contract"),
    "payslip": N_("Payslip"),  # pay runs' payslips (portal.payroll), stored by the portal
    "other": N_("Other"),
}
KINDS = ("pdf", "image", "csv", "xlsx", "xml", "zip", "ofx", "mt940")
ALLOWED: dict[str, frozenset[str]] = {
    "invoice": frozenset({"pdf", "image", "xml", "zip"}),
    "receipt": frozenset({"pdf", "image"}),
    "bank_statement": frozenset({"pdf", "csv", "xlsx", "image", "zip", "ofx", "mt940"}),
    "payroll_input": frozenset({"csv", "xlsx", "pdf", "zip"}),
    "contract": frozenset({"pdf", "image", "zip"}),
    "payslip": frozenset({"pdf"}),
    "other": frozenset(KINDS),
}
HEAD_BYTES = 8192

# Every code a Refused from this module (or from callers, "too_large") may carry.
CODES = ("empty", "too_large", "type_not_allowed", "unknown_type", "encrypted", "csv_encoding", "xml_unsafe",
         "damaged", "zip_bomb", "zip_nested", "zip_encrypted", "zip_member_not_allowed", "xlsx_macros",
         "filed_elsewhere")

EMPTY = N_("This file is empty. Check that you picked the right file, then upload it again.")
UNKNOWN = N_("We could not tell what kind of file this is. Upload the document as PDF, image (JPEG, PNG, WebP, "
             "HEIC, TIFF), CSV, XLSX or XML.")
WINDOWS_PROGRAM = N_("This file is a Windows program, not a document. Upload the document itself as PDF, image, "
                     "CSV, XLSX or XML.")
PROGRAM = N_("This file is a program, not a document. Upload the document itself as PDF, image, CSV, XLSX or XML.")
SCRIPT = N_("This file is a script or program code, not a document. Upload the document itself as PDF, image, "
            "CSV, XLSX or XML.")
HTML = N_("This file is a web page (HTML), which can contain code that runs in the browser. Save or print the "
          "page as PDF and upload the PDF.")
SVG = N_("This file is an SVG drawing, which can contain code that runs in the browser. Export it as PDF or PNG "
         "and upload that.")
WORD = N_("This file is a word-processor document. Save it as PDF and upload the PDF.")
OLD_EXCEL = N_("This file is an old-format Excel workbook (.xls). Open it in Excel, save it as .xlsx, and upload "
               "the .xlsx file.")
OFFICE_OTHER = N_("This file is an Office document that is not an Excel workbook. Save it as PDF (or a spreadsheet "
                  "as .xlsx) and upload that.")
PRESENTATION = N_("This file is a presentation. Save it as PDF and upload the PDF.")
OPEN_DOCUMENT = N_("This file is an OpenDocument file. Save it as PDF, or a spreadsheet as .xlsx, and upload that.")
ENCRYPTED = N_("This file is protected with a password. Save a copy without the password and upload that.")
EMAIL = N_("This file is an e-mail. Save its attachments (or print the e-mail to PDF) and upload those.")
ARCHIVE = N_("This file is a %(format)s archive. Only ZIP archives are accepted: unpack it and upload the files, "
             "or put them in a ZIP.")
OTHER_IMAGE = N_("This image format (%(format)s) is not accepted. Save the image as JPEG or PNG and upload it again.")
PLAIN_TEXT = N_("This file is plain text, not a document we accept. Upload it as PDF, or as CSV if it is a table.")
CSV_NOT_UTF8 = N_("This CSV file is not saved as UTF-8. Save it again as \"CSV UTF-8\" (in Excel: Save As, "
                  "CSV UTF-8) and upload it again.")
XML_UNSAFE = N_("This XML file contains parts that are not allowed in an e-invoice (a DOCTYPE, a style sheet or web "
                "page code). Upload the e-invoice XML exactly as your accounting software exported it.")
DAMAGED = N_("This file is damaged or in a format we cannot read. Create it again (for a ZIP, with your computer's "
             "own Compress function) and upload it again.")
ZIP_BOMB = N_("This ZIP file unpacks to far more data than it holds, as harmful \"ZIP bombs\" do. Upload the files "
              "it contains one by one, or in a ZIP made by your computer's own Compress function.")
ZIP_TOO_BIG = N_("This ZIP file unpacks to more than %(limit)s. Upload the files it contains one by one, or in "
                 "smaller ZIP files.")
ZIP_TOO_MANY = N_("This ZIP file contains more than %(limit)s files. Upload them in smaller ZIP files.")
ZIP_NESTED = N_("This ZIP file contains another archive, \"%(member)s\". Unpack it and put its files in the ZIP "
                "directly, or upload it separately.")
ZIP_ENCRYPTED = N_("This ZIP file is protected with a password. Create it again without a password and upload it "
                   "again.")
ZIP_MEMBER = N_("This ZIP file contains \"%(member)s\", which is not a PDF, image, CSV, XLSX or XML file. Remove it "
                "from the ZIP and upload it again.")
ZIP_EMPTY = N_("This ZIP file contains no documents. Check that you picked the right file, then upload it again.")
XLSX_MACROS = N_("This workbook contains macros or embedded programs. Save it as a plain Excel workbook (.xlsx) "
                 "without macros and upload that.")
FILED_ELSEWHERE = N_("You uploaded this file before as “%(title)s”, filed as %(filed)s, but this request asks for "
                    "%(asked)s. Check that it is the right file; if it is, re-file “%(title)s” as %(asked)s on its "
                    "page, then upload it here again.")
NOT_ALLOWED = {
    "invoice": N_("Invoices are accepted as PDF, image, XML e-invoice or a ZIP of those. Upload the invoice in one "
                  "of these formats, or choose another category."),
    "receipt": N_("Receipts are accepted as PDF or image. Upload the receipt in one of these formats, or choose "
                  "another category."),
    "bank_statement": N_("Bank statements are accepted as PDF, CSV, XLSX, OFX, MT940, image or a ZIP of those. "
                         "Upload the statement in one of these formats, or choose another category."),
    "payroll_input": N_("Payroll input is accepted as CSV, XLSX, PDF or a ZIP of those. Upload it in one of these "
                        "formats, or choose another category."),
    "contract": N_("Contracts are accepted as PDF, image or a ZIP of those. Upload the contract in one of these "
                   "formats, or choose another category."),
    "payslip": N_("Payslips are accepted as PDF. Upload the payslip as PDF, or choose another category."),
    "other": N_("This kind of file is not accepted. Upload the document as PDF, image, CSV, XLSX, XML or ZIP."),
}


class Refused(Exception):
    """An upload we do not keep: ``code`` (stable), ``message`` (English ``%(name)s`` template), ``params``."""

    def __init__(self, code: str, message: str, params: Mapping[str, Any] | None = None) -> None:
        self.code = code
        self.message = message
        self.params: dict[str, Any] = dict(params or {})
        super().__init__(self.text)

    @property
    def text(self) -> str:
        """The English message with its parameters filled in."""
        return self.message % self.params if self.params else self.message


@dataclass(frozen=True)
class Sniffed:
    """What the content is. ``extension`` is ours (from the kind), never the uploader's."""

    kind: str
    mime: str
    extension: str


_IMAGES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/heic": "heic",
           "image/heif": "heif", "image/tiff": "tiff"}
_ZIPS = {"application/zip", "application/x-zip-compressed",
         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
_EXECUTABLES = {"application/x-dosexec", "application/x-msdownload", "application/vnd.microsoft.portable-executable"}
_PROGRAMS = {"application/x-executable", "application/x-pie-executable", "application/x-sharedlib",
             "application/x-mach-binary", "application/x-object", "application/x-elf", "application/java-archive",
             "application/x-java-applet", "application/vnd.android.package-archive", "application/x-msi",
             "application/x-ms-installer", "application/x-apple-diskimage", "application/vnd.debian.binary-package",
             "application/x-rpm", "application/wasm"}
_SCRIPTS = {"application/javascript", "text/javascript", "application/x-javascript", "application/x-sh",
            "application/x-shellscript", "application/x-powershell", "application/x-bat", "application/x-httpd-php"}
_REFUSED = {
    "text/html": HTML, "application/xhtml+xml": HTML, "image/svg+xml": SVG, "image/svg": SVG,
    "application/msword": WORD, "text/rtf": WORD, "application/rtf": WORD,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": WORD,
    "application/vnd.ms-excel": OLD_EXCEL, "application/vnd.ms-powerpoint": PRESENTATION,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": PRESENTATION,
    "application/encrypted": ENCRYPTED, "message/rfc822": EMAIL, "application/vnd.ms-outlook": EMAIL,
}
_ARCHIVES = {"application/x-rar": "RAR", "application/vnd.rar": "RAR", "application/x-7z-compressed": "7-Zip",
             "application/gzip": "gzip", "application/x-gzip": "gzip", "application/x-bzip2": "bzip2",
             "application/x-xz": "xz", "application/x-tar": "tar", "application/zstd": "Zstandard",
             "application/x-zstd": "Zstandard", "application/x-lzma": "LZMA", "application/x-iso9660-image": "ISO",
             "application/vnd.ms-cab-compressed": "CAB"}
_IMAGE_NAMES = {"image/gif": "GIF", "image/bmp": "BMP", "image/x-ms-bmp": "BMP", "image/avif": "AVIF",
                "image/x-icon": "ICO", "image/vnd.microsoft.icon": "ICO", "image/jxl": "JPEG XL",
                "image/vnd.adobe.photoshop": "Photoshop"}
# Namespaces and markup that make XML render or run as a web page in a browser.
_XML_ACTIVE = ("http://www.w3.org/1999/xhtml", "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xsl/transform",
               "<?xml-stylesheet", "<!doctype", "<!entity")
_XML_SCRIPT = re.compile(r"<\s*(?:[\w.-]+:)?(?:script|iframe|object|embed)\b")
_HTML_ROOTS = frozenset({"html", "head", "body", "div", "span", "p", "a", "script", "iframe", "frame", "frameset",
                         "form", "img", "style", "meta", "link", "object", "embed", "math", "table", "title", "base",
                         "template", "br", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "pre", "center", "font"})
_TAG = re.compile(r"<([A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)([^<>]*)")


def sniff(head: bytes) -> Sniffed:
    """The kind of a file from its first bytes (``HEAD_BYTES`` of them, or all if shorter).

    A ZIP is reported as "zip" (``classify_zip`` tells a workbook from an archive later).
    Raises ``Refused`` for empty files, programs, scripts, web pages, SVG and other kinds we do not keep.
    """
    head = bytes(head)
    if not head:
        raise Refused("empty", EMPTY)
    mime = magic.from_buffer(head, mime=True).split(";")[0].strip().lower()
    if mime == "application/x-empty":
        raise Refused("empty", EMPTY)
    if mime == "application/pdf":
        return Sniffed("pdf", mime, "pdf")
    if mime in _IMAGES:
        return Sniffed("image", mime, _IMAGES[mime])
    if mime in _ZIPS:
        return Sniffed("zip", "application/zip", "zip")
    if mime in ("text/xml", "application/xml"):
        return _xml(head, declared=True)
    if mime in ("text/plain", "text/csv"):
        return _text(head)
    if mime in _EXECUTABLES:
        raise Refused("type_not_allowed", WINDOWS_PROGRAM, {"mime": mime})
    if mime in _PROGRAMS:
        raise Refused("type_not_allowed", PROGRAM, {"mime": mime})
    if mime in _SCRIPTS or (mime.startswith("text/x-") and mime != "text/x-empty"):
        raise Refused("type_not_allowed", SCRIPT, {"mime": mime})
    if mime in _REFUSED:
        code = "encrypted" if _REFUSED[mime] is ENCRYPTED else "type_not_allowed"
        raise Refused(code, _REFUSED[mime], {"mime": mime})
    if mime.startswith("application/vnd.oasis.opendocument"):
        raise Refused("type_not_allowed", OPEN_DOCUMENT, {"mime": mime})
    if mime.startswith("application/vnd.openxmlformats") or mime.startswith("application/vnd.ms-"):
        raise Refused("type_not_allowed", OFFICE_OTHER, {"mime": mime})
    if mime in _ARCHIVES:
        raise Refused("type_not_allowed", ARCHIVE, {"format": _ARCHIVES[mime], "mime": mime})
    if mime.startswith("image/"):
        name = _IMAGE_NAMES.get(mime, mime.removeprefix("image/").removeprefix("x-").upper())
        raise Refused("type_not_allowed", OTHER_IMAGE, {"format": name, "mime": mime})
    raise Refused("unknown_type", UNKNOWN, {"mime": mime})


def _complete_lines(text: str, complete: bool) -> str:
    # The head usually ends mid-line; a cut line would look like a row with fewer columns.
    return text if complete else text[:text.rfind("\n") + 1]


def _text(head: bytes) -> Sniffed:
    """text/plain or text/csv from libmagic: a CSV (UTF-8), an XML file without declaration, or refused."""
    complete = len(head) < HEAD_BYTES
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Excel's "Unicode text" export: a table, but not in the one encoding we read.
        raise Refused("csv_encoding", CSV_NOT_UTF8)
    body = head[len(codecs.BOM_UTF8):] if head.startswith(codecs.BOM_UTF8) else head
    bank = _bank_file(body, complete)  # before UTF-8: OFX v1 and MT940 are often Windows-1252 or Latin-1
    if bank is not None:
        return bank
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(body, final=complete)
    except UnicodeDecodeError:
        # Windows-1252 and friends: say so if it is a table, so the user knows how to fix it.
        if _delimited(_complete_lines(body.decode("cp1252", errors="replace"), complete)):
            raise Refused("csv_encoding", CSV_NOT_UTF8) from None
        raise Refused("type_not_allowed", PLAIN_TEXT) from None
    if "\x00" in text:
        raise Refused("unknown_type", UNKNOWN, {"mime": "text/plain"})
    if text.lstrip().startswith("<"):
        return _xml(head, declared=False)
    if _delimited(_complete_lines(text, complete)):
        return Sniffed("csv", "text/csv", "csv")
    raise Refused("type_not_allowed", PLAIN_TEXT)


# Bank files in text: OFX v1 opens with its SGML header; MT940 is a run of SWIFT tags (":20:" first, after an
# optional "{1:...}{2:...}{4:" envelope), with the account, the opening balance and, in a whole file, the closing.
_OFX_V1 = re.compile(r"\s*OFXHEADER\s*:\s*100\s*[\r\n]")
_MT940_START = re.compile(r"\s*(?:\{1:[^}]*\}(?:\{2:[^}]*\})?(?:\{3:(?:\{[^}]*\})*\})?\{4:\s*)?:20:")
_MT940_TAGS = (re.compile(r"^:25P?:", re.M), re.compile(r"^:60[FM]:", re.M))
_MT940_END = re.compile(r"^:62[FM]:", re.M)


def _bank_file(body: bytes, complete: bool) -> Sniffed | None:
    """An OFX v1 (SGML) or MT940 statement, told by its header or its SWIFT tags; None for anything else."""
    if b"\x00" in body:
        return None
    text = body.decode("latin-1")  # every byte decodes; the markers are ASCII
    if _OFX_V1.match(text) and "<OFX>" in text.upper():
        return Sniffed("ofx", "application/x-ofx", "ofx")
    if _MT940_START.match(text) and all(tag.search(text) for tag in _MT940_TAGS) and (
            not complete or _MT940_END.search(text)):
        return Sniffed("mt940", "text/plain", "sta")
    return None


def _delimited(text: str) -> bool:
    """Whether ``text`` is a table: after at most 10 preamble lines, 2+ rows with the same 2+ columns."""
    for delimiter in (",", ";", "\t", "|"):
        try:
            rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
                    if any(cell.strip() for cell in row)]
        except csv.Error:
            continue
        for skip in range(min(10, len(rows))):
            body = rows[skip:]
            width = len(body[0])
            if len(body) >= 2 and width >= 2 and all(len(row) == width for row in body):
                return True
    return False


def _root_element(text: str) -> tuple[str, str] | None:
    """(name, attributes) of the first element after the prolog, or None if there is none in ``text``."""
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if text.startswith("<?", pos):
            end = text.find("?>", pos)
        elif text.startswith("<!--", pos):
            end = text.find("-->", pos)
        else:
            break
        if end < 0:
            return None
        pos = end + 2
    match = _TAG.match(text, pos)
    return (match.group(1), match.group(2)) if match else None


def _xml(head: bytes, *, declared: bool) -> Sniffed:
    """An XML e-invoice, or refused when it is (or could render as) HTML or SVG, or carries a DOCTYPE."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = head.decode("utf-16", errors="replace")
    else:
        text = head.decode("utf-8", errors="replace").removeprefix("\ufeff")
    lower = text.lower()
    root = _root_element(text)
    local = root[0].rsplit(":", 1)[-1].lower() if root else ""
    if local == "svg" or "http://www.w3.org/2000/svg" in lower:
        raise Refused("type_not_allowed", SVG)
    if local in _HTML_ROOTS or "<!doctype html" in lower:
        raise Refused("type_not_allowed", HTML)
    # A DOCTYPE brings entity expansion (billion laughs, XXE) to whoever parses it; XHTML or SVG
    # namespaces, script elements and style sheets make a browser run it as a page.
    if any(marker in lower for marker in _XML_ACTIVE) or _XML_SCRIPT.search(lower):
        raise Refused("xml_unsafe", XML_UNSAFE)
    if root is None:
        raise Refused("unknown_type", UNKNOWN, {"mime": "text/xml"})
    if root[0] == "OFX":  # OFX v2: XML whose root is <OFX> (no namespace, upper case as the standard writes it)
        return Sniffed("ofx", "application/x-ofx", "ofx")
    if not declared and "xmlns" not in root[1]:
        # Without a declaration only a namespaced root (every e-invoice format has one) is XML to us.
        raise Refused("type_not_allowed", PLAIN_TEXT)
    return Sniffed("xml", "application/xml", "xml")


def accepting(kind: str) -> list[str]:
    """The categories that take files of ``kind`` (what to offer when the chosen one does not)."""
    return [category for category in CATEGORIES if kind in ALLOWED[category]]


def check_allowed(category: str, kind: str) -> None:
    """Raise ``Refused("type_not_allowed")`` unless files of ``kind`` may be filed under ``category``."""
    if category not in ALLOWED:
        raise ValueError(f"unknown category {category!r}")
    if kind not in ALLOWED[category]:
        raise Refused("type_not_allowed", NOT_ALLOWED[category], {"category": category, "kind": kind})


# --- ZIP archives ------------------------------------------------------------------------------

_PIECE = 64 * 1024
_TAIL = 4 * 1024 * 1024        # the central directory must fit in the last 4 MiB
_RATIO_FLOOR = 1024 * 1024     # below 1 MiB unpacked, a high ratio is a small repetitive file, not a bomb
_OOXML_PARTS = ("[content_types].xml", "_rels/", "docprops/", "xl/", "customxml/")
# Files that archivers and file managers add, recognised by name *and* content so that
# nothing else can hide under their names.
_HOUSEKEEPING = ((re.compile(r"(?:^|/)__macosx/|(?:^|/)\._[^/]*$"), b"\x00\x05\x16\x07"),  # AppleDouble
                 (re.compile(r"(?:^|/)\.ds_store$"), b"\x00\x00\x00\x01Bud1"),
                 (re.compile(r"(?:^|/)thumbs\.db$"), b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"))


class _Tap:
    """The archive's bytes in 64 KiB pieces, counted, with the last few MiB kept for the central directory."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = chunks
        self.consumed = 0
        self.failure: BaseException | None = None
        self._tail: deque[bytes] = deque()
        self._tail_size = 0

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self.chunks:
                view = memoryview(chunk)
                for start in range(0, len(view), _PIECE):
                    piece = bytes(view[start:start + _PIECE])
                    self.consumed += len(piece)
                    self._tail.append(piece)
                    self._tail_size += len(piece)
                    while self._tail_size - len(self._tail[0]) >= _TAIL:
                        self._tail_size -= len(self._tail.popleft())
                    yield piece
        except BaseException as exc:
            self.failure = exc  # the source's own error (storage, decryption): not the archive's fault
            raise

    def tail(self) -> tuple[bytes, int]:
        """The last bytes read and the offset of the first of them."""
        return b"".join(self._tail), self.consumed - self._tail_size


def _member_name(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp437")  # ZIP's legacy encoding, when the UTF-8 flag is not set


def _ends_archive(tail: bytes, eocd: int) -> bool:
    return len(tail) - eocd >= 22 and struct.unpack_from("<H", tail, eocd + 20)[0] == len(tail) - eocd - 22


def _central_directory(tail: bytes, tail_start: int) -> list[tuple[bytes, int, int]]:
    """(name, CRC-32, size) of every entry of the central directory at the end of the archive."""
    damaged = Refused("damaged", DAMAGED)
    floor = max(0, len(tail) - 22 - 0xFFFF)  # the record is 22 bytes plus a comment of at most 64 KiB
    eocd = tail.rfind(b"PK\x05\x06", floor)
    # The real record is the one whose comment length reaches exactly to the end.
    while eocd >= 0 and not _ends_archive(tail, eocd):
        eocd = tail.rfind(b"PK\x05\x06", floor, eocd)
    if eocd < 0:
        raise damaged
    _, disk, cd_disk, on_disk, count, cd_size, cd_offset, _ = struct.unpack_from("<4s4H2LH", tail, eocd)
    end = eocd
    if eocd >= 20 and tail[eocd - 20:eocd - 16] == b"PK\x06\x07":  # ZIP64 end of central directory
        record = struct.unpack_from("<4sLQL", tail, eocd - 20)[2] - tail_start
        if record < 0 or tail[record:record + 4] != b"PK\x06\x06":
            raise damaged
        disk, cd_disk, on_disk, count, cd_size, cd_offset = struct.unpack_from("<2L4Q", tail, record + 16)
        end = record
    start = cd_offset - tail_start
    if disk or cd_disk or on_disk != count or start < 0 or start + cd_size != end:
        raise damaged  # split archives, or a directory that is not where it says
    entries: list[tuple[bytes, int, int]] = []
    pos = start
    for _ in range(count):
        if tail[pos:pos + 4] != b"PK\x01\x02" or pos + 46 > end:
            raise damaged
        crc, _, size, name_len, extra_len, comment_len = struct.unpack_from("<3L3H", tail, pos + 16)
        name = tail[pos + 46:pos + 46 + name_len]
        extra = tail[pos + 46 + name_len:pos + 46 + name_len + extra_len]
        if size == 0xFFFFFFFF:  # the real size is the first field of the ZIP64 extra block
            at = 0
            while at + 4 <= len(extra):
                tag, length = struct.unpack_from("<2H", extra, at)
                if tag == 1 and length >= 8:
                    size = struct.unpack_from("<Q", extra, at + 4)[0]
                    break
                at += 4 + length
        entries.append((name, crc, size))
        pos += 46 + name_len + extra_len + comment_len
    if pos != end:
        raise damaged
    return entries


def classify_zip(chunks: Iterable[bytes], *, max_members: int = 1000, max_total: int = 1 << 30,
                 max_ratio: int = 100) -> str:
    """"xlsx" for an Excel workbook, "zip" for an archive of accepted files; else ``Refused``.

    ``chunks`` is the (decrypted) archive; it is streamed, never held. Stops unpacking as soon as
    the archive unpacks to more than ``max_total`` bytes or more than ``max_ratio`` times its packed
    size ("zip_bomb"), or holds more than ``max_members`` entries. The entries found while streaming
    must be those the central directory lists (what unzip tools show), or the archive is "damaged".
    """
    tap = _Tap(chunks)
    seen: list[tuple[bytes, int, int]] = []
    names: list[str] = []
    problem: Refused | None = None
    documents = 0
    total = 0
    try:
        for raw_name, _, member in stream_unzip(tap):
            if len(seen) >= max_members:
                raise Refused("zip_bomb", ZIP_TOO_MANY, {"limit": max_members})
            name = _member_name(raw_name)
            start = tap.consumed
            head = bytearray()
            size = crc = 0
            for piece in member:
                size += len(piece)
                total += len(piece)
                crc = zlib.crc32(piece, crc)
                if len(head) < HEAD_BYTES:
                    head += piece[:HEAD_BYTES - len(head)]
                if total > max_total:
                    raise Refused("zip_bomb", ZIP_TOO_BIG, {"limit": _size(max_total)})
                # Per entry and for the whole archive, so neither one big bomb after large honest
                # files nor many small bombs get through. stream_unzip reads at most one piece ahead,
                # so an entry's packed size is at most what was read since it began, plus one piece.
                if (size > _RATIO_FLOOR and size > max_ratio * (tap.consumed - start + _PIECE)) or (
                        total > _RATIO_FLOOR and total > max_ratio * tap.consumed):
                    raise Refused("zip_bomb", ZIP_BOMB, {"ratio": max_ratio})
            seen.append((raw_name, crc, size))
            names.append(name)
            if name.endswith(("/", "\\")) or size == 0 or _housekeeping(name, head):
                continue  # folders, empty entries and macOS/Windows housekeeping carry no document
            documents += 1
            if problem is None:
                problem = _member_problem(bytes(head), name)
        tail, tail_start = tap.tail()
    except Refused:
        raise
    except (PasswordError, MissingPasswordError, EncryptionMechanismNotAllowed):
        raise Refused("zip_encrypted", ZIP_ENCRYPTED) from None
    except Exception as exc:
        if tap.failure is not None:
            raise
        if isinstance(exc, UnzipError | ValueError | struct.error | EOFError | IndexError | zlib.error):
            raise Refused("damaged", DAMAGED) from None
        raise
    if sorted(_central_directory(tail, tail_start)) != sorted(seen):
        raise Refused("damaged", DAMAGED)  # two different listings: what we checked is not what unzips
    return _verdict(names, problem, documents)


def _housekeeping(name: str, head: bytes | bytearray) -> bool:
    path = name.replace("\\", "/").lower()
    return any(pattern.search(path) and head.startswith(magic_bytes) for pattern, magic_bytes in _HOUSEKEEPING)


def _verdict(names: list[str], problem: Refused | None, documents: int) -> str:
    lowered = [name.replace("\\", "/").lower() for name in names]
    if "[content_types].xml" in lowered:  # Office Open XML
        if "xl/workbook.xml" not in lowered:
            raise Refused("type_not_allowed", OFFICE_OTHER)
        for name, low in zip(names, lowered, strict=True):
            if not low.startswith(_OOXML_PARTS):
                raise Refused("zip_member_not_allowed", ZIP_MEMBER, {"member": display_name(name)})
            if low.endswith("vbaproject.bin") or low.startswith("xl/activex/") or (
                    low.startswith("xl/embeddings/") and low.endswith(".bin")):
                raise Refused("xlsx_macros", XLSX_MACROS, {"member": display_name(name)})
        return "xlsx"
    if problem is not None:
        raise problem
    if not documents:
        raise Refused("empty", ZIP_EMPTY)
    return "zip"


def _member_problem(head: bytes, name: str) -> Refused | None:
    shown = display_name(name)
    try:
        sniffed = sniff(head)
    except Refused as exc:
        if exc.code in ("encrypted", "zip_encrypted"):
            return Refused("zip_encrypted", ZIP_ENCRYPTED, {"member": shown})
        return Refused("zip_member_not_allowed", ZIP_MEMBER, {"member": shown, "reason": exc.code})
    if sniffed.kind == "zip":
        return Refused("zip_nested", ZIP_NESTED, {"member": shown})
    return None


def _size(n: int) -> str:
    return f"{n / (1 << 30):.0f} GB" if n >= 1 << 30 else f"{max(1, round(n / (1 << 20)))} MB"


# --- Names ---------------------------------------------------------------------------------------

MAX_NAME = 180


def display_name(raw: str | None, *, fallback: str = "document") -> str:
    """A file name fit for display (never for a storage key or a path).

    The last path component (of either separator), NFC, without control or format characters
    (bidi overrides that disguise "exe" as "pdf", escapes that colour a terminal), whitespace
    collapsed, no leading or trailing dots or spaces, at most 180 characters keeping the extension.
    """
    if not raw:
        return fallback
    name = re.split(r"[/\\]", raw)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = " ".join(name.split()).strip(". ")
    if len(name) > MAX_NAME:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and 0 < len(extension) <= 16 and " " not in extension:
            name = stem[:MAX_NAME - len(extension) - 1].rstrip(". ") + "." + extension
        else:
            name = name[:MAX_NAME].rstrip(". ")
    return name or fallback
