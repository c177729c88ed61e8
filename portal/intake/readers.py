"""Reading a document's text, in a child process with resource limits (as previews are made).

A PDF's own text layer comes first (``pdftotext``, poppler-utils): a page that has text is never
OCR'd. A page without text (a scan) and a photo or scan image are read by Tesseract in Vietnamese and
English (``vie+eng``) after the image is cleaned: turned upright from its EXIF orientation, made grey,
its contrast stretched, enlarged when small, and straightened (the small skew of a scan or a photo
taken at a slant, found by the angle whose rows of ink line up best).

Uploaded bytes are attacker-controlled and PDF and image parsers are attack surface, so nothing here
parses them in the worker: this file is also the child's program (``python -I``, no portal import, no
secrets in its environment, limits set before it reads a byte; ``previews.run_sandboxed`` runs it).
The child answers one JSON object: ``{"pages": [{"text": ..., "source": "layer" | "ocr", "words": [...]}, ...]}``;
the first ``LAYOUT_PAGES`` pages also carry their words with the box each was found in (from
``pdftotext -bbox-layout`` or Tesseract's TSV), as ``[text, x0, y0, x1, y1, confidence]`` with the
box in fractions of the page (0..1 from the top left) and the confidence in 0..100 (100 for a text layer),
so that invoice fields can be read by where they are and shown highlighted over the page; a seventh
element numbers the line the reader put the word in.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass

READ_KINDS = frozenset({"pdf", "image"})
MEMORY_LIMIT = 1536 * 1024 * 1024  # Tesseract with two languages on a 300 dpi page
CPU_SECONDS = 240
MAX_OUTPUT = 8 * 1024 * 1024  # text of a few hundred pages
LANGUAGES = "vie+eng"
OCR_DPI = 300
SEARCHABLE_FILE_BYTES = 512 * 1024 * 1024  # OCRmyPDF's work files, per file
LAYOUT_PAGES = 3  # invoice fields are on the first pages: only these keep their words' boxes
MIN_PAGE_TEXT = 16  # fewer characters than this on a PDF page: a scan (a page number alone is not text)

# The child's exit statuses, besides 0 (the JSON on standard output).
_UNREADABLE, _TOO_MANY_PIXELS, _OUT_OF_MEMORY, _UNAVAILABLE, _EMPTY = 3, 4, 6, 7, 8



class ReadFailed(Exception):
    """The text could not be read; ``reason`` is a stable word (``intake.steps.REASONS`` says it to people)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Word = tuple[str, float, float, float, float, float, int]  # text, x0, y0, x1, y1 (fractions of the page), 0..100, line


@dataclass(frozen=True)
class Page:
    text: str
    source: str  # layer | ocr
    words: tuple[Word, ...] = ()  # only on the first LAYOUT_PAGES pages


def read_text(chunks: Iterable[bytes], kind: str, *, max_input: int, timeout: float,
              max_pages: int) -> list[Page] | None:
    """The text of each page of a PDF or an image (one page); None for kinds without text to read.

    Raises ``ReadFailed`` when the file cannot be read, the child runs past its limits or ``timeout``,
    or the input is larger than ``max_input`` bytes. Scanned pages past ``max_pages`` are not OCR'd.
    """
    if kind not in READ_KINDS:
        return None
    from portal.documents.previews import run_sandboxed

    ran = run_sandboxed(os.path.abspath(__file__), [kind, str(max_pages)], chunks, max_input=max_input,
                        timeout=timeout, max_output=MAX_OUTPUT)
    if ran.too_large:
        raise ReadFailed("too_large")
    if ran.timed_out:
        raise ReadFailed("timeout")
    if ran.status == 0 and len(ran.output) <= MAX_OUTPUT:
        try:
            pages = json.loads(ran.output)["pages"]
            return [Page(str(p["text"]), "ocr" if p["source"] == "ocr" else "layer",
                         tuple((str(w[0]), *(float(v) for v in w[1:6]), int(w[6])) for w in p.get("words") or ()))
                    for p in pages]
        except (ValueError, KeyError, TypeError):
            raise ReadFailed("unreadable") from None
    import signal

    if ran.status == _TOO_MANY_PIXELS:
        raise ReadFailed("too_many_pixels")
    if ran.status == _UNAVAILABLE:
        raise ReadFailed("unavailable")
    if ran.status in (_OUT_OF_MEMORY, -signal.SIGXCPU, -signal.SIGKILL):
        raise ReadFailed("limits")
    raise ReadFailed("unreadable")


# --- the child ---------------------------------------------------------------------------------------

PROGRAM_DIRS = "/usr/local/bin:/usr/bin:/bin"
MAX_PIXELS = 50_000_000


def _run(program: str, arguments: list[str], data: bytes) -> bytes:
    import shutil
    import subprocess

    path = shutil.which(program, path=PROGRAM_DIRS)
    if path is None:
        raise FileNotFoundError(program)
    done = subprocess.run([path, *arguments], input=data, capture_output=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise ValueError(f"{program} exited with {done.returncode}")
    return done.stdout


READ_WIDTH, MAX_ENLARGE = 1600, 1.5  # narrower images are enlarged towards this width, by at most this


def _clean(image):  # noqa: ANN001, ANN202 - PIL images; the child imports Pillow only when it needs it
    """Upright, grey, stretched, enlarged when small, straightened: what Tesseract reads best.

    Enlarging is capped at 1.5x: a narrow receipt scanned at 200 dpi already has letters tall enough, and
    enlarging it to a page's width (2.5x) made Tesseract read six times the pixels for nothing.
    """
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(image)
    image = ImageOps.autocontrast(image.convert("L"), cutoff=1)
    if image.width < READ_WIDTH:  # enlarged towards a page's width, but never more than MAX_ENLARGE
        factor = min(READ_WIDTH / image.width, MAX_ENLARGE)
        image = image.resize((round(image.width * factor), max(1, round(image.height * factor))),
                             Image.Resampling.LANCZOS)
    angle = _skew(image)
    if angle:
        image = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    return image


def _skew(image) -> float:  # noqa: ANN001
    """The small rotation (within 5 degrees either way) that lines the rows of ink up best.

    Text lines are horizontal when the sum of ink per row varies the most: the projection profile.
    Measured on a small, black-and-white copy, in half degrees, then refined to a tenth.
    """
    from PIL import Image

    small = image.copy()
    small.thumbnail((600, 600))
    ink = small.point(lambda v: 255 if v < 128 else 0)

    def score(angle: float) -> float:
        turned = ink.rotate(angle, resample=Image.Resampling.NEAREST, expand=False, fillcolor=0)
        rows = list(turned.resize((1, turned.height), Image.Resampling.BOX).tobytes())  # ink per row, in C
        mean = sum(rows) / len(rows)
        return sum((r - mean) ** 2 for r in rows)

    best = max((a / 2 for a in range(-10, 11)), key=score)
    best = max((best + d / 10 for d in range(-4, 5)), key=score)
    return best if abs(best) >= 0.2 else 0.0


def _ocr(picture: bytes, width: int, height: int) -> dict:
    """Tesseract's TSV of a cleaned page: its text (lines as Tesseract found them) and its words' boxes."""
    tsv = _run("tesseract", ["stdin", "stdout", "-l", LANGUAGES, "--psm", "3", "tsv"], picture)
    lines: dict[tuple[str, ...], list[str]] = {}
    words = []
    for row in tsv.decode("utf-8", "replace").splitlines()[1:]:
        cells = row.split("\t")
        if len(cells) < 12 or cells[0] != "5" or not cells[11].strip():
            continue  # level 5: a word
        left, top, w, h = (int(v) for v in cells[6:10])
        key = tuple(cells[1:5])  # block, paragraph, line
        if key not in lines:
            lines[key] = []
        lines[key].append(cells[11])
        words.append([cells[11], round(left / width, 4), round(top / height, 4), round((left + w) / width, 4),
                      round((top + h) / height, 4), max(0.0, float(cells[10])), len(lines) - 1])
    text, paragraph = [], None
    for key, line in lines.items():  # in reading order: Tesseract writes the rows in it
        if paragraph is not None and key[:3] != paragraph:
            text.append("")
        paragraph = key[:3]
        text.append(" ".join(line))
    return {"text": "\n".join(text) + "\n" if text else "", "words": words}


def _ocr_image(image, *, layout: bool = True) -> dict:  # noqa: ANN001
    import io

    out = io.BytesIO()
    clean = _clean(image)
    clean.save(out, "PPM")  # uncompressed: Tesseract reads it without decoding a PNG
    page = _ocr(out.getvalue(), clean.width, clean.height)
    if not layout:
        page.pop("words")
    return page


def _layer_words(data: bytes, last: int) -> dict[int, list]:
    """The words of the text layer of pages 1..last with their boxes (``pdftotext -bbox-layout``)."""
    import html
    import re

    xhtml = _run("pdftotext", ["-bbox-layout", "-enc", "UTF-8", "-f", "1", "-l", str(last), "-", "-"], data)
    pages: dict[int, list] = {}
    number, width, height, line = 0, 1.0, 1.0, 0
    for match in re.finditer(r'<page width="([\d.]+)" height="([\d.]+)">|<line |<word xMin="([\d.]+)" '
                             r'yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>',
                             xhtml.decode("utf-8", "replace")):
        if match[1]:
            number, width, height = number + 1, float(match[1]) or 1.0, float(match[2]) or 1.0
            pages[number] = []
            continue
        if not match[3]:
            line += 1
            continue
        x0, y0, x1, y1 = (float(v) for v in match.group(3, 4, 5, 6))
        pages.setdefault(number, []).append([html.unescape(match[7]), round(x0 / width, 4), round(y0 / height, 4),
                                             round(x1 / width, 4), round(y1 / height, 4), 100.0, line])
    return pages


def _pdf(data: bytes, max_pages: int) -> list[dict[str, str]]:
    import io

    from PIL import Image

    layer = _run("pdftotext", ["-layout", "-enc", "UTF-8", "-", "-"], data).decode("utf-8", "replace")
    texts = layer.split("\f")
    if texts and not texts[-1].strip():
        texts.pop()  # pdftotext ends every page with a form feed
    boxes = _layer_words(data, min(LAYOUT_PAGES, len(texts))) if texts else {}
    pages, ocr_done = [], 0
    for number, text in enumerate(texts, start=1):
        if len(text.strip()) >= MIN_PAGE_TEXT or ocr_done >= max_pages:
            pages.append({"text": text, "source": "layer", "words": boxes.get(number, [])})
            continue
        png = _run("pdftoppm", ["-png", "-r", str(OCR_DPI), "-gray", "-f", str(number), "-l", str(number),
                                "-singlefile", "-"], data)
        page = _ocr_image(Image.open(io.BytesIO(png), formats=["PNG"]), layout=number <= LAYOUT_PAGES)
        pages.append({**page, "source": "ocr"})
        ocr_done += 1
    return pages


def _image(data: bytes) -> list[dict[str, str]]:
    import io
    import warnings

    from PIL import Image

    formats = ["JPEG", "PNG", "WEBP", "TIFF"]
    if data[4:8] == b"ftyp":  # HEIC/HEIF (what iPhones save): its decoder is loaded only for such a file
        import pillow_heif

        pillow_heif.register_heif_opener()
        formats.append("HEIF")
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    image = Image.open(io.BytesIO(data), formats=formats)
    return [{**_ocr_image(image), "source": "ocr"}]


def make_searchable(chunks: Iterable[bytes], *, max_input: int, timeout: float) -> bytes:
    """A scanned PDF with the recognised text laid under its page images (OCRmyPDF, Tesseract ``vie+eng``),
    made in the sandboxed child; raises ``ReadFailed`` as ``read_text`` does.

    The mode is OCRmyPDF's default, for PDFs whose every page is a scan (intake asks only for those): it
    refuses a page that already has text rather than redo it. Debian's Ghostscript 10.0.0 makes OCRmyPDF
    refuse ``--skip-text`` and ``--redo-ocr``; neither is used, and Ghostscript is not needed at all: pages
    are rasterised by pypdfium2 and the output is a plain PDF (``output_type="pdf"``), not PDF/A.
    """
    from portal.documents.previews import run_sandboxed

    ran = run_sandboxed(os.path.abspath(__file__), ["searchable"], chunks, max_input=max_input, timeout=timeout,
                        max_output=2 * max_input + 2**20)
    if ran.too_large:
        raise ReadFailed("too_large")
    if ran.timed_out:
        raise ReadFailed("timeout")
    if ran.status == 0 and ran.output.startswith(b"%PDF-"):
        return ran.output
    raise ReadFailed("unavailable" if ran.status == _UNAVAILABLE else "unreadable")


def _searchable(data: bytes) -> bytes:
    import contextlib
    import io
    import logging
    import tempfile

    import ocrmypdf

    logging.disable(logging.CRITICAL)  # its progress and warnings are not the answer on stdout
    with tempfile.TemporaryDirectory() as work:
        source, target = os.path.join(work, "in.pdf"), os.path.join(work, "out.pdf")
        with open(source, "wb") as out:
            out.write(data)
        with contextlib.redirect_stdout(io.StringIO()):
            ocrmypdf.ocr(source, target, language=LANGUAGES.split("+"), output_type="pdf", rasterizer="pypdfium",
                         jobs=1, progress_bar=False, optimize=0, tesseract_timeout=CPU_SECONDS)
        with open(target, "rb") as made:
            return made.read()


def main(argv: list[str]) -> int:
    """The child: read ``argv[0]`` ("pdf" or "image") from stdin; JSON pages on stdout. With "searchable",
    a searchable copy of the PDF on stdin, on stdout."""
    import importlib.util

    # The sandbox's limits, from the previews' child (loaded by path: this child imports no package of ours).
    spec = importlib.util.spec_from_file_location(
        "previews", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "documents",
                                 "previews.py"))
    previews = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["previews"] = previews
    spec.loader.exec_module(previews)  # type: ignore[union-attr]
    searchable = argv == ["searchable"]  # OCRmyPDF works in files: a capped size, in a directory of its own
    previews._limit(MEMORY_LIMIT, CPU_SECONDS, SEARCHABLE_FILE_BYTES if searchable else 0)  # noqa: SLF001
    os.environ["OMP_THREAD_LIMIT"] = "1"  # Tesseract: one thread, as the worker runs jobs one at a time
    if searchable:
        try:
            made = _searchable(sys.stdin.buffer.read())
        except FileNotFoundError:
            return _UNAVAILABLE
        except Exception:  # noqa: BLE001 - whatever OCRmyPDF raises (a page with text, a damaged file)
            return _UNREADABLE
        sys.stdout.buffer.write(made)
        sys.stdout.buffer.flush()
        return 0
    if len(argv) != 2 or argv[0] not in READ_KINDS or not argv[1].isdigit():
        return _UNREADABLE
    data = sys.stdin.buffer.read()
    try:
        pages = _pdf(data, int(argv[1])) if argv[0] == "pdf" else _image(data)
    except FileNotFoundError:
        return _UNAVAILABLE
    except MemoryError:
        return _OUT_OF_MEMORY
    except Exception as exc:  # noqa: BLE001 - whatever the parsers raise, the answer is "unreadable"
        if type(exc).__name__ in ("DecompressionBombError", "DecompressionBombWarning"):
            return _TOO_MANY_PIXELS
        return _UNREADABLE
    sys.stdout.write(json.dumps({"pages": pages}, ensure_ascii=False))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
