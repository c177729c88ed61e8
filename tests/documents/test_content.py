"""What a file is, decided by its content: real sample files made here, refusals with useful messages."""

from __future__ import annotations

import io
import struct
import time
import zipfile
import zlib
from collections.abc import Iterator

import pytest
from PIL import Image

from portal.documents import content
from portal.documents.content import (
    ALLOWED,
    CATEGORIES,
    HEAD_BYTES,
    Refused,
    check_allowed,
    classify_zip,
    display_name,
    sniff,
)

# --- sample files ---------------------------------------------------------------------------------


def image_bytes(fmt: str, size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, fmt)
    return out.getvalue()


def pdf() -> bytes:
    return image_bytes("PDF", (300, 200))


CSV = b"Date,Description,Amount\n2024-01-02,Office rent,-1200.00\n2024-01-03,\"Client, Ltd\",4500.00\n"
CSV_SEMICOLON = "Buchungstag;Verwendungszweck;Betrag\n02.01.2024;Miete Büro;-1200,00\n03.01.2024;Kunde;4500,00\n"
UBL = b"""<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
         xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:ID>INV-2024-001</cbc:ID>
  <cbc:IssueDate>2024-01-31</cbc:IssueDate>
</Invoice>
"""
HTML = b"<!DOCTYPE html>\n<html><head><title>Invoice</title></head><body><script>alert(document.cookie)</script>"
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00\x01\x00\x00\x00" + b"\x00" * 200
PE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 44 + b"\x80\x00\x00\x00" + b"\x00" * 300

XLSX_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        "</Types>"),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        'officeDocument" Target="xl/workbook.xml"/></Relationships>'),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Payroll" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        'worksheet" Target="worksheets/sheet1.xml"/></Relationships>'),
    "xl/worksheets/sheet1.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        '<row r="1"><c r="A1" t="inlineStr"><is><t>Employee</t></is></c><c r="B1"><v>4200</v></c></row>'
        "</sheetData></worksheet>"),
}


def make_zip(members: dict[str, bytes | str], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def xlsx(**extra: bytes) -> bytes:
    return make_zip({**XLSX_PARTS, **extra})


def zip_bomb(size: int = 2 << 30, name: bytes = b"statement.csv") -> bytes:
    """One ZIP64 entry of ``size`` zeros deflated ~1000:1, made without ever holding or deflating ``size`` bytes.

    After a full flush, deflate output depends on nothing before it, so the compressed form of
    1 MiB of zeros can simply be repeated; an empty final block ends the stream.
    """
    piece = 1 << 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(piece)) + compressor.flush(zlib.Z_FULL_FLUSH)
    data = block * (size // piece) + zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    crc = 0
    zeros = bytes(piece)
    for _ in range(size // piece):
        crc = zlib.crc32(zeros, crc)
    sizes = struct.pack("<HHQQ", 1, 16, size, len(data))  # ZIP64 extra: real sizes
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 45, 0, 8, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                        len(name), len(sizes)) + name + sizes
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 45, 45, 0, 8, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                          len(name), len(sizes), 0, 0, 0, 0, 0) + name + sizes
    offset = len(local) + len(data)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), offset, 0)
    return local + data + central + end


def pieces(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def refused(call, *args, **kwargs) -> Refused:
    with pytest.raises(Refused) as caught:
        call(*args, **kwargs)
    exc = caught.value
    assert exc.code in content.CODES
    assert exc.text.endswith(".") and "%(" not in exc.text  # a finished sentence
    return exc


# --- sniff ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "kind", "extension"), [
    (pdf(), "pdf", "pdf"),
    (image_bytes("PNG"), "image", "png"),
    (image_bytes("JPEG"), "image", "jpg"),
    (image_bytes("WEBP"), "image", "webp"),
    (image_bytes("TIFF"), "image", "tiff"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, "image", "heic"),
    (CSV, "csv", "csv"),
    (b"\xef\xbb\xbf" + CSV, "csv", "csv"),
    (CSV_SEMICOLON.encode(), "csv", "csv"),
    (CSV.replace(b",", b"\t"), "csv", "csv"),
    (UBL, "xml", "xml"),
    (UBL.split(b"\n", 1)[1], "xml", "xml"),  # no declaration, but a namespaced root
    (make_zip({"a.csv": CSV}), "zip", "zip"),
    (xlsx(), "zip", "zip"),  # told apart by classify_zip
])
def test_sniff_accepts(data: bytes, kind: str, extension: str) -> None:
    sniffed = sniff(data[:HEAD_BYTES])
    assert (sniffed.kind, sniffed.extension) == (kind, extension)
    assert "/" in sniffed.mime


def test_sniff_long_csv_head_cut_mid_line() -> None:
    rows = "".join(f"2024-01-{i % 28 + 1:02d},Payment number {i},{i * 7}.50\n" for i in range(1000))
    data = ("Date,Description,Amount\n" + rows).encode()
    assert sniff(data[:HEAD_BYTES]).kind == "csv"


def test_sniff_csv_with_a_bank_preamble() -> None:
    data = b"Account;DE00 1234\nPeriod;January\n\nDate;Text;Amount;Balance\n1;a;2;3\n4;b;5;6\n"
    assert sniff(data).kind == "csv"


@pytest.mark.parametrize(("data", "code", "says"), [
    (b"", "empty", "empty"),
    (ELF, "type_not_allowed", "program"),
    (PE, "type_not_allowed", "Windows program"),
    (b"#!/bin/sh\nrm -rf ~\n", "type_not_allowed", "script"),
    (b"<?php system($_GET['c']); ?>", "type_not_allowed", "script"),
    (HTML, "type_not_allowed", "web page"),
    (b"<div><script>alert(1)</script></div>", "type_not_allowed", "web page"),
    (SVG, "type_not_allowed", "SVG"),
    (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "type_not_allowed", "SVG"),
    (b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>', "type_not_allowed",
     "web page"),
    (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">]><Invoice xmlns="urn:x">&lol;</Invoice>',
     "xml_unsafe", "DOCTYPE"),
    (b'<?xml version="1.0"?>\n<?xml-stylesheet type="text/xsl" href="x.xsl"?><Invoice xmlns="urn:x"/>',
     "xml_unsafe", "style sheet"),
    (b'<?xml version="1.0"?>\n<Invoice xmlns="urn:x"><h:script xmlns:h="http://www.w3.org/1999/xhtml">'
     b"alert(1)</h:script></Invoice>", "xml_unsafe", "web page code"),
    (image_bytes("GIF"), "type_not_allowed", "GIF"),
    (b"Rar!\x1a\x07\x00" + b"\x00" * 64, "type_not_allowed", "RAR"),
    (b"Dear client, please find attached the invoice for January.\n", "type_not_allowed", "plain text"),
    ("Datum;Betrag\n01.01.2024;10,00 Müller\n02.01.2024;11,00 Jäger\n".encode("cp1252"), "csv_encoding", "UTF-8"),
    ("Date\tAmount\n1\t2\n".encode("utf-16"), "csv_encoding", "UTF-8"),
    (b"\x00\x01\x02\x03\xfe\xfd" * 50, "unknown_type", "could not tell"),
])
def test_sniff_refuses(data: bytes, code: str, says: str) -> None:
    exc = refused(sniff, data)
    assert exc.code == code
    assert says in exc.text


def test_a_program_named_pdf_is_still_a_program() -> None:
    # The name plays no part: only the bytes are looked at.
    exc = refused(sniff, PE)
    assert exc.text == ("This file is a Windows program, not a document. Upload the document itself as PDF, "
                        "image, CSV, XLSX or XML.")


def test_refused_message_is_a_translatable_template() -> None:
    exc = refused(sniff, b"Rar!\x1a\x07\x00" + b"\x00" * 64)
    assert "%(format)s" in exc.message and exc.params["format"] == "RAR"
    assert exc.text == exc.message % exc.params == str(exc)
    # Callers may build their own refusals with an already translated message.
    assert Refused("too_large", "Too large.").text == "Too large."


# --- categories -----------------------------------------------------------------------------------


def test_allowed_per_category() -> None:
    assert set(ALLOWED) == set(CATEGORIES)
    assert ALLOWED["invoice"] == {"pdf", "image", "xml", "zip"}
    assert ALLOWED["receipt"] == {"pdf", "image"}
    assert ALLOWED["other"] == set(content.KINDS)
    check_allowed("invoice", "xml")
    check_allowed("payroll_input", "xlsx")
    exc = refused(check_allowed, "receipt", "csv")
    assert exc.code == "type_not_allowed" and "PDF or image" in exc.text
    with pytest.raises(ValueError):
        check_allowed("nonsense", "pdf")


# --- ZIP archives ---------------------------------------------------------------------------------


def test_zip_of_documents_is_accepted() -> None:
    archive = make_zip({"January/invoice.pdf": pdf(), "January/statement.csv": CSV, "January/": b"",
                        "__MACOSX/January/._invoice.pdf": b"\x00\x05\x16\x07junk",
                        ".DS_Store": b"\x00\x00\x00\x01Bud1"})
    assert classify_zip(pieces(archive)) == "zip"
    assert classify_zip([archive]) == "zip"  # however the caller cuts it
    assert classify_zip(pieces(make_zip({"scan.png": image_bytes("PNG")}, zipfile.ZIP_STORED), 7)) == "zip"


def test_zip64_end_records_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)  # makes zipfile write ZIP64 end records
    archive = make_zip({"a.pdf": pdf(), "b.csv": CSV})
    assert b"PK\x06\x06" in archive and b"PK\x06\x07" in archive
    assert classify_zip(pieces(archive)) == "zip"


def test_zip_with_a_comment() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.pdf", pdf())
        archive.comment = b"made by PK\x05\x06 a scanner"
    assert classify_zip(pieces(out.getvalue(), 100)) == "zip"


@pytest.mark.parametrize("name", ["__MACOSX/evil.exe", "docs/._invoice.pdf", ".DS_Store", "Thumbs.db"])
def test_nothing_hides_under_housekeeping_names(name: str) -> None:
    exc = refused(classify_zip, pieces(make_zip({"a.pdf": pdf(), name: PE})))
    assert exc.code == "zip_member_not_allowed"


def test_xlsx_is_told_apart_from_a_zip() -> None:
    assert classify_zip(pieces(xlsx())) == "xlsx"


def test_xlsx_with_macros_is_refused() -> None:
    exc = refused(classify_zip, pieces(xlsx(**{"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0macro"})))
    assert exc.code == "xlsx_macros"


def test_other_office_documents_are_refused() -> None:
    docx = make_zip({"[Content_Types].xml": XLSX_PARTS["[Content_Types].xml"],
                     "word/document.xml": '<w:document xmlns:w="urn:w"/>'})
    assert refused(classify_zip, pieces(docx)).code == "type_not_allowed"


def test_workbook_with_a_stowaway_is_not_a_workbook() -> None:
    exc = refused(classify_zip, pieces(xlsx(**{"../../payload.exe": PE})))
    assert exc.code == "zip_member_not_allowed"
    assert exc.params["member"] == "payload.exe"


def test_zip_bomb_is_refused_quickly() -> None:
    bomb = zip_bomb()
    assert zipfile.ZipFile(io.BytesIO(bomb)).infolist()[0].file_size == 2 << 30  # a valid archive
    read = 0

    def counted() -> Iterator[bytes]:
        nonlocal read
        for piece in pieces(bomb):
            read += len(piece)
            yield piece

    started = time.monotonic()
    exc = refused(classify_zip, counted())
    assert exc.code == "zip_bomb" and "ZIP bombs" in exc.text
    assert time.monotonic() - started < 2
    assert read < 1 << 20  # stopped within the first MiB of a ~2 MiB archive


def test_zip_total_limit() -> None:
    archive = make_zip({f"part{i}.csv": CSV * 20_000 for i in range(3)})  # ~2 MB each, ratio ~500
    exc = refused(classify_zip, pieces(archive), max_total=3 << 20, max_ratio=10_000)
    assert exc.code == "zip_bomb" and exc.params["limit"] == "3 MB"
    assert classify_zip(pieces(archive), max_ratio=10_000) == "zip"


def test_too_many_members() -> None:
    archive = make_zip({f"row{i}.csv": CSV for i in range(30)})
    assert refused(classify_zip, pieces(archive), max_members=20).code == "zip_bomb"
    assert classify_zip(pieces(archive), max_members=30) == "zip"


def test_nested_zip_is_refused() -> None:
    inner = make_zip({"invoice.pdf": pdf()})
    exc = refused(classify_zip, pieces(make_zip({"statement.csv": CSV, "more/inner.zip": inner})))
    assert exc.code == "zip_nested"
    assert exc.params["member"] == "inner.zip"
    # A workbook inside an archive is a ZIP inside a ZIP too.
    assert refused(classify_zip, pieces(make_zip({"book.xlsx": xlsx()}))).code == "zip_nested"


@pytest.mark.parametrize(("name", "data", "shown"), [
    ("../../etc/evil.exe", PE, "evil.exe"),
    ("C:\\evil\\x.pdf", ELF, "x.pdf"),
    ("inv\u202egpj.pdf", HTML, "invgpj.pdf"),
    ("image.svg", SVG, "image.svg"),
])
def test_zip_member_not_allowed_is_named_sanitised(name: str, data: bytes, shown: str) -> None:
    exc = refused(classify_zip, pieces(make_zip({"ok.pdf": pdf(), name: data})))
    assert exc.code == "zip_member_not_allowed"
    assert exc.params["member"] == shown
    assert f'"{shown}"' in exc.text


def test_encrypted_member_is_refused() -> None:
    archive = bytearray(make_zip({"invoice.pdf": pdf()}))
    # Set the "encrypted" flag in the local header and in the central directory.
    archive[6] |= 1
    central = archive.rfind(b"PK\x01\x02")
    archive[central + 8] |= 1
    assert refused(classify_zip, pieces(bytes(archive))).code == "zip_encrypted"


def test_central_directory_must_list_what_was_checked() -> None:
    # Unzip tools show the central directory: a listing that differs from the entries is smuggling.
    archive = bytearray(make_zip({"a.pdf": pdf()}))
    at = archive.rfind(b"a.pdf")
    archive[at:at + 5] = b"a.exe"
    assert refused(classify_zip, pieces(bytes(archive))).code == "damaged"


@pytest.mark.parametrize("data", [
    b"PK\x03\x04" + b"\x00" * 10,
    make_zip({"a.pdf": pdf()})[:-30],
    b"PK\x03\x04" + b"\xff" * 500,
])
def test_malformed_zip_is_damaged(data: bytes) -> None:
    assert refused(classify_zip, pieces(data)).code == "damaged"


def test_empty_zip_is_refused() -> None:
    assert refused(classify_zip, pieces(make_zip({"folder/": b""}))).code == "empty"


def test_errors_of_the_source_are_not_blamed_on_the_archive() -> None:
    archive = make_zip({"a.pdf": pdf(), "b.csv": CSV})

    def broken() -> Iterator[bytes]:
        yield archive[:100]
        raise OSError("storage went away")

    with pytest.raises(OSError, match="storage went away"):
        classify_zip(broken())


# --- display names --------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    ("invoice.pdf", "invoice.pdf"),
    ("../../etc/passwd", "passwd"),
    ("C:\\evil\\x.pdf", "x.pdf"),
    ("inv\u202egpj.pdf", "invgpj.pdf"),
    ("a\u2066b\u2069c\u200f.pdf", "abc.pdf"),
    ("\x00\x1b[31mred.pdf", "[31mred.pdf"),
    ("  ..hidden  report \t 2024 .pdf", "hidden report 2024 .pdf"),
    ("line\u2028break.pdf", "line break.pdf"),
    ("Cafe\u0301.pdf", "Caf\u00e9.pdf"),  # NFC
    ("", "document"),
    (None, "document"),
    ("../", "document"),
    ("\u202e\x00 ..", "document"),
])
def test_display_name(raw: str | None, expected: str) -> None:
    assert display_name(raw) == expected


def test_display_name_fallback_and_cap() -> None:
    assert display_name("///", fallback="upload") == "upload"
    long = "x" * 300 + ".pdf"
    shown = display_name(long)
    assert len(shown) == 180 and shown.endswith(".pdf")
    assert len(display_name("y" * 300)) == 180
