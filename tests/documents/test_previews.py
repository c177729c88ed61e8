"""Thumbnails rendered in the sandboxed child: images (Pillow) and PDFs (pdftoppm)."""

from __future__ import annotations

import io
import struct
import time
import zlib
from collections.abc import Iterator

import pytest
from PIL import Image, PngImagePlugin

from portal.documents.previews import PNG_SIGNATURE, PreviewFailed, render_thumbnail


def pieces(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def opened(png: bytes | None) -> Image.Image:
    assert png is not None and png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    image.load()
    return image


def assert_no_metadata(image: Image.Image) -> None:
    assert len(image.getexif()) == 0
    # pdftoppm's pHYs (resolution) chunk is allowed: it says nothing about the document.
    assert not {"exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "Comment"} & set(image.info)
    assert not getattr(image, "text", {})


def two_colour_photo(size: tuple[int, int] = (1000, 600)) -> Image.Image:
    """Left half red, right half blue."""
    image = Image.new("RGB", size, (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, size[0] // 2, size[1]))
    return image


def near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 40 for a, b in zip(pixel[:3], colour, strict=True))


def test_jpeg_exif_orientation_is_applied_and_stripped() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    exif[0x010F] = "Camera maker"
    exif.get_ifd(0x8825)[2] = (48.0, 51.0, 0.0)  # a GPS position must not leak into the thumbnail
    out = io.BytesIO()
    two_colour_photo().save(out, "JPEG", exif=exif.tobytes(), quality=90)
    thumb = opened(render_thumbnail(pieces(out.getvalue()), "image"))
    assert thumb.size == (288, 480)  # 1000x600 turned upright is 600x1000, fitted in 480x480
    assert thumb.mode == "RGB"
    # Turned clockwise, the left (red) half is on top.
    assert near(thumb.getpixel((144, 40)), (255, 0, 0))
    assert near(thumb.getpixel((144, 440)), (0, 0, 255))
    assert_no_metadata(thumb)


def test_png_keeps_transparency_and_loses_metadata() -> None:
    image = Image.new("RGBA", (900, 300), (0, 128, 0, 128))
    meta = PngImagePlugin.PngInfo()
    meta.add_text("Author", "someone@example.com")
    meta.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta/>")
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=meta, dpi=(300, 300))
    thumb = opened(render_thumbnail([out.getvalue()], "image"))
    assert thumb.size == (480, 160)
    assert thumb.mode == "RGBA"
    assert thumb.getpixel((10, 10))[3] == 128
    assert_no_metadata(thumb)
    assert "dpi" not in thumb.info


def test_small_images_are_not_enlarged() -> None:
    out = io.BytesIO()
    Image.new("L", (40, 30), 200).save(out, "WEBP")
    thumb = opened(render_thumbnail([out.getvalue()], "image"))
    assert thumb.size == (40, 30) and thumb.mode == "RGB"


def test_pdf_first_page() -> None:
    pages = [Image.new("RGB", (300, 200), (255, 0, 0)), Image.new("RGB", (200, 300), (0, 0, 255))]
    out = io.BytesIO()
    pages[0].save(out, "PDF", save_all=True, append_images=pages[1:])
    thumb = opened(render_thumbnail(pieces(out.getvalue(), 1000), "pdf"))
    assert max(thumb.size) <= 480 and thumb.size[0] > thumb.size[1]  # the landscape first page
    assert near(thumb.getpixel((thumb.size[0] // 2, thumb.size[1] // 2)), (255, 0, 0))
    assert_no_metadata(thumb)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_decompression_bomb_png_fails_quickly() -> None:
    # 100 000 x 100 000 pixels declared in a file of a few hundred bytes.
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(bytes(30_001) * 10)) + \
        png_chunk(b"IEND", b"")
    started = time.monotonic()
    with pytest.raises(PreviewFailed) as caught:
        render_thumbnail([bomb], "image")
    assert caught.value.reason == "too_many_pixels"
    assert time.monotonic() - started < 5
    assert str(caught.value).endswith(".")


def test_just_over_the_pixel_cap_is_refused_too() -> None:
    # Between MAX_IMAGE_PIXELS and twice that, Pillow only warns: the warning is an error here.
    ihdr = struct.pack(">IIBBBBB", 8000, 7000, 8, 0, 0, 0, 0)  # 56 Mpx greyscale
    png = PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b"")
    with pytest.raises(PreviewFailed) as caught:
        render_thumbnail([png], "image")
    assert caught.value.reason == "too_many_pixels"


@pytest.mark.parametrize(("data", "kind"), [
    (b"%PDF-1.7\n" + b"garbage " * 500, "pdf"),
    (b"this is not a PDF at all", "pdf"),
    (b"\xff\xd8\xff\xe0 truncated jpeg", "image"),
    (b"GIF89a" + b"\x00" * 100, "image"),  # not a format we decode
])
def test_garbage_fails(data: bytes, kind: str) -> None:
    with pytest.raises(PreviewFailed) as caught:
        render_thumbnail([data], kind)
    assert caught.value.reason == "unreadable"


@pytest.mark.parametrize("kind", ["csv", "xlsx", "xml", "zip", "nonsense"])
def test_kinds_without_previews(kind: str) -> None:
    def untouched() -> Iterator[bytes]:
        raise AssertionError("the content must not be read")
        yield b""  # pragma: no cover

    assert render_thumbnail(untouched(), kind) is None


def heic_photo(size: tuple[int, int] = (1200, 900), colour: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    """A real HEIC (HEVC in a HEIF container), as an iPhone saves photos."""
    import pillow_heif

    out = io.BytesIO()
    pillow_heif.from_pillow(Image.new("RGB", size, colour)).save(out, quality=80)
    return out.getvalue()


def test_an_iphone_photo_in_heic_gets_a_thumbnail() -> None:
    image = opened(render_thumbnail(pieces(heic_photo()), "image"))
    assert image.size == (480, 360)
    assert all(abs(a - b) <= 12 for a, b in zip(image.getpixel((240, 180)), (30, 120, 200), strict=True))
    assert_no_metadata(image)


def test_a_heif_we_cannot_decode_has_no_preview_and_a_cut_one_is_unreadable() -> None:
    header_only = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    assert render_thumbnail([header_only], "image") is None  # a HEIF variant: "no preview", not an error
    photo = heic_photo()
    with pytest.raises(PreviewFailed) as caught:
        render_thumbnail([photo[: len(photo) // 2]], "image")
    assert caught.value.reason == "unreadable"


def test_input_over_the_limit_stops_feeding() -> None:
    fed = 0

    def endless() -> Iterator[bytes]:
        nonlocal fed
        while True:
            fed += 1
            yield b"\x00" * 65536

    with pytest.raises(PreviewFailed) as caught:
        render_thumbnail(endless(), "image", max_input=1024 * 1024)
    assert caught.value.reason == "too_large"
    assert fed == 17  # the 17th chunk crossed 1 MiB and was never written


def test_wall_clock_timeout() -> None:
    def slow() -> Iterator[bytes]:
        for _ in range(50):
            yield b"\x00" * 1024
            time.sleep(0.1)

    started = time.monotonic()
    with pytest.raises(PreviewFailed) as caught:
        render_thumbnail(slow(), "pdf", timeout=0.5)
    assert caught.value.reason == "timeout"
    assert time.monotonic() - started < 3
