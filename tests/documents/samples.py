"""Real sample files for vault tests, made on the fly (no binary fixtures in the repository)."""

from __future__ import annotations

import io
import os
import zipfile

from PIL import Image


def pdf(text_seed: int = 0, pages: int = 1) -> bytes:
    """A real PDF (Pillow writes one page per image); each ``text_seed`` gives different content."""
    import random

    rng = random.Random(text_seed)
    images = []
    for _ in range(pages):
        page = Image.new("RGB", (200, 280), "white")
        for x in range(0, 200, 20):  # a pattern of blocks: JPEG inside the PDF cannot blur it into another seed's
            for y in range(0, 280, 20):
                page.paste((rng.randrange(256), rng.randrange(256), rng.randrange(256)), (x, y, x + 20, y + 20))
        images.append(page)
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:])
    return out.getvalue()


def png(seed: int = 0, size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (seed % 256, 80, 160)).save(out, "PNG")
    return out.getvalue()


def jpeg(seed: int = 0, size: tuple[int, int] = (640, 480)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (seed % 256, 120, 40)).save(out, "JPEG")
    return out.getvalue()


def csv_bytes(rows: int = 5) -> bytes:
    lines = ["date,description,amount"] + [f"2026-03-{i + 1:02d},Payment {i},{1000 * (i + 1)}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def xlsx() -> bytes:
    """A minimal but real Office Open XML workbook."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/'
                   '2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-'
                   'package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
                   '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
                   'officedocument.spreadsheetml.sheet.main+xml"/></Types>')
        z.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
                   'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/'
                   'spreadsheetml/2006/main"><sheets/></workbook>')
    return out.getvalue()


def einvoice_xml() -> bytes:
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n<HDon><DLHDon><TTChung><PBan>2.0.1</PBan>'
            b'<KHHDon>C26TAA</KHHDon><SHDon>123</SHDon></TTChung></DLHDon></HDon>\n')


def windows_exe() -> bytes:
    """The start of a PE executable: 'MZ', a DOS stub, and the PE header offset."""
    head = bytearray(b"MZ" + b"\x90\x00" + b"\x00" * 56)
    head[0x3C:0x40] = (0x80).to_bytes(4, "little")
    body = bytes(head) + b"\x00" * (0x80 - len(head)) + b"PE\x00\x00" + b"\x4c\x01" + os.urandom(4000)
    return body


def zip_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def zip_bomb(uncompressed_mib: int = 2048) -> bytes:
    """A small ZIP that expands to ``uncompressed_mib`` MiB of zeros (built without holding them)."""
    out = io.BytesIO()
    zero = bytes(1 << 20)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z, z.open("zeros.csv", "w", force_zip64=True) as f:
        for _ in range(uncompressed_mib):
            f.write(zero)
    return out.getvalue()
