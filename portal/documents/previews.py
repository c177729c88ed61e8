"""Thumbnails we render ourselves, in a child process with resource limits.

Uploaded bytes are attacker-controlled and image and PDF parsers are attack surface,
so rendering never happens in the calling process: this file is also the child's
program. The parent streams the plaintext into the child's standard input and reads
a PNG from its standard output. The child sets its own limits before it reads a byte
(address space, CPU time, no core dumps, no files written), gets an environment
without the portal's secrets, and renders images with Pillow (a pixel cap; bomb
warnings are errors) or execs ``pdftoppm`` (poppler-utils) for the first page of a PDF.

The child is started as ``python -I <this file>`` rather than ``-m portal.documents.previews``
so that it imports neither the ``portal`` package (and Flask) nor anything from the
working directory or ``PYTHON*`` variables; it uses only the standard library and Pillow.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

MAX_SIDE = 480
MAX_PAGE_SIDE = 1600  # a page shown large enough to read its figures (intake's fields over the page)
MAX_PIXELS = 50_000_000           # Pillow refuses anything larger (a 50 Mpx photo is already unusual)
MEMORY_LIMIT = 768 * 1024 * 1024  # address space of the child
CPU_SECONDS = 20
MAX_OUTPUT = 4 * 1024 * 1024      # a 480 px PNG is far smaller; anything bigger is not ours
PREVIEW_KINDS = frozenset({"image", "pdf"})
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PDFTOPPM_DIRS = "/usr/local/bin:/usr/bin:/bin"

# The child's exit statuses, besides 0 (a PNG on standard output).
_UNREADABLE, _TOO_MANY_PIXELS, _NO_PREVIEW, _OUT_OF_MEMORY, _UNAVAILABLE = 3, 4, 5, 6, 7

TOO_LARGE = "This file is too large for a preview. It can still be downloaded."
TIMED_OUT = "Making the preview took too long. The file can still be downloaded."
TOO_MANY_PIXELS = "This image is too large for a preview. It can still be downloaded."
OVER_LIMITS = "The preview needed more memory or time than allowed. The file can still be downloaded."
UNREADABLE = "A preview could not be made; the file may be damaged. It can still be downloaded."
UNAVAILABLE = "Previews of this kind of file are not available on this server. The file can still be downloaded."


class PreviewFailed(Exception):
    """No preview: the message is a plain sentence; ``reason`` is a short stable word for logs."""

    def __init__(self, message: str = UNREADABLE, reason: str = "unreadable") -> None:
        super().__init__(message)
        self.reason = reason


def render_thumbnail(chunks: Iterable[bytes], kind: str, *, max_input: int = 64 * 1024 * 1024,
                     timeout: float = 30.0, page: int = 1, side: int = MAX_SIDE) -> bytes | None:
    """A PNG of at most ``side`` x ``side`` px (480 by default) for an image or a PDF's page ``page``
    (the first by default; an image has one); None for kinds without previews.

    ``chunks`` (the plaintext) are streamed into the sandboxed child, never joined here.
    Raises ``PreviewFailed`` if the child crashes, runs past ``timeout`` seconds or its limits,
    or the input is larger than ``max_input`` bytes (feeding stops and the child is killed).
    """
    if kind not in PREVIEW_KINDS or not (1 <= page <= 10_000 and 16 <= side <= MAX_PAGE_SIDE):
        return None
    ran = run_sandboxed(os.path.abspath(__file__), [kind, str(page), str(side)], chunks, max_input=max_input,
                        timeout=timeout, max_output=MAX_OUTPUT)
    if ran.too_large:
        raise PreviewFailed(TOO_LARGE, "too_large")
    if ran.timed_out:
        raise PreviewFailed(TIMED_OUT, "timeout")
    return _result(ran.status, ran.output)


@dataclass(frozen=True)
class Ran:
    """How a sandboxed child ended: its exit status, what it wrote (at most ``max_output`` + 1 bytes)."""

    status: int
    output: bytes
    too_large: bool  # the input passed ``max_input``: feeding stopped and the child was killed
    timed_out: bool


def run_sandboxed(program: str, args: list[str], chunks: Iterable[bytes], *, max_input: int, timeout: float,
                  max_output: int) -> Ran:
    """Run the Python file ``program`` as an isolated child (``python -I``, no secrets in its environment,
    its own session) with ``args``, stream ``chunks`` into its standard input and collect its output.

    The child must set its own limits before it reads a byte (``_limit`` here does). The child is
    killed when it runs past ``timeout`` seconds, writes more than ``max_output`` bytes, or the input
    passes ``max_input`` bytes. Used for previews here and for reading text (``portal.intake.readers``).
    """
    deadline = time.monotonic() + timeout
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and file, no shell
        [sys.executable, "-I", "-B", program, *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={"PATH": PDFTOPPM_DIRS, "LC_ALL": "C.UTF-8"}, cwd="/", close_fds=True, start_new_session=True,
    )
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        with contextlib.suppress(ProcessLookupError):
            child.kill()

    # The watchdog also unblocks a write to a child that stopped reading.
    watchdog = threading.Timer(timeout, expire)
    watchdog.daemon = True
    output: list[bytes] = []
    readers = [threading.Thread(target=_collect, args=(child.stdout, max_output + 1, output, child), daemon=True),
               threading.Thread(target=_collect, args=(child.stderr, 0, [], child), daemon=True)]
    too_large = False
    try:
        watchdog.start()
        for reader in readers:
            reader.start()
        fed = 0
        for chunk in chunks:
            fed += len(chunk)
            if fed > max_input:
                too_large = True
                break
            if time.monotonic() > deadline:
                expire()
                break
            try:
                child.stdin.write(chunk)  # type: ignore[union-attr]
            except (BrokenPipeError, OSError):
                break  # the child is gone; its exit status says why
        if too_large:
            child.kill()
        with contextlib.suppress(BrokenPipeError, OSError):
            child.stdin.close()  # type: ignore[union-attr]
        # The output reaches its end when the child exits: joining the reader wakes at once, where
        # Popen.wait(timeout) polls (up to 50 ms late on every run).
        readers[0].join(max(0.0, deadline - time.monotonic()) + 1)
        try:
            child.wait(max(0.0, deadline - time.monotonic()) + 1)
        except subprocess.TimeoutExpired:
            expire()
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
        child.wait()
        for reader in readers:
            reader.join()
        for stream in (child.stdin, child.stdout, child.stderr):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]
    return Ran(child.returncode, b"".join(output), too_large, timed_out.is_set())


def _collect(stream: IO[bytes], keep: int, into: list[bytes], child: subprocess.Popen) -> None:
    """Read ``stream`` to its end, keeping at most ``keep`` bytes; kill the child if it writes more."""
    kept = 0
    while piece := stream.read(65536):
        if kept < keep:
            into.append(piece)
        kept += len(piece)
        if keep and kept > keep:
            with contextlib.suppress(ProcessLookupError):
                child.kill()


def _result(status: int, png: bytes) -> bytes | None:
    if status == 0 and png.startswith(PNG_SIGNATURE) and len(png) <= MAX_OUTPUT:
        return png  # checked but not parsed here: parsing it would bring the sandbox's risk back in
    if status == _NO_PREVIEW:
        return None
    if status == _TOO_MANY_PIXELS:
        raise PreviewFailed(TOO_MANY_PIXELS, "too_many_pixels")
    if status == _UNAVAILABLE:
        raise PreviewFailed(UNAVAILABLE, "unavailable")
    if status in (_OUT_OF_MEMORY, -signal.SIGXCPU, -signal.SIGKILL):
        raise PreviewFailed(OVER_LIMITS, "limits")
    raise PreviewFailed(UNREADABLE, "unreadable")


# --- the child ---------------------------------------------------------------------------------------


def _limit(memory: int = MEMORY_LIMIT, cpu_seconds: int = CPU_SECONDS, file_bytes: int = 0) -> None:
    """The child's limits, set before it reads a byte (its own children inherit them)."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))  # SIGXCPU, then SIGKILL
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))   # a core dump would hold the plaintext
    # Write no files (SIGXFSZ stays ignored: EFBIG); a child that must (OCRmyPDF's work files) gets a cap.
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


def _pdf(page: int = 1, side: int = MAX_SIDE) -> int:
    """Replace this process with pdftoppm: page ``page`` of the PDF on stdin, as a PNG on stdout."""
    import shutil

    program = shutil.which("pdftoppm", path=PDFTOPPM_DIRS)
    if program is None:
        return _UNAVAILABLE
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    arguments = ["-png", "-f", str(page), "-l", str(page), "-scale-to", str(side), "-singlefile", "-"]  # "-": stdin
    os.execv(program, [program, *arguments])  # noqa: S606 - a fixed program and arguments, no shell
    return _UNREADABLE  # not reached


def _is_heif(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and data[8:12] in {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"hevc"}


def _image(side: int = MAX_SIDE) -> int:
    """Render the image on stdin: orientation applied, fit in ``side`` x ``side``, RGB(A) PNG without metadata."""
    import io
    import warnings

    import pillow_heif
    from PIL import Image, ImageOps, UnidentifiedImageError

    pillow_heif.register_heif_opener()  # HEIC/HEIF: what iPhones save photos as
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    data = sys.stdin.buffer.read()
    try:
        # Only the formats we accept: every other decoder stays out of reach.
        image = Image.open(io.BytesIO(data), formats=["JPEG", "PNG", "WEBP", "TIFF", "HEIF"])
        if image.format == "JPEG":
            image.draft(None, (side * 2, side * 2))  # decode at a fraction of the size
        image = ImageOps.exif_transpose(image)
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
        alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
            image.mode == "P" and "transparency" in image.info)
        mode = "RGBA" if alpha else "RGB"
        if image.mode.startswith(("I", "F")):  # 16/32-bit greyscale: scale down to 8 bits first
            image = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
        # A new image carries pixels only: no EXIF, XMP, ICC profile or text chunks.
        clean = Image.new(mode, image.size)
        clean.paste(image.convert(mode))
        out = io.BytesIO()
        clean.save(out, "PNG", optimize=True)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return _TOO_MANY_PIXELS
    except MemoryError:
        return _OUT_OF_MEMORY
    except UnidentifiedImageError:
        return _NO_PREVIEW if _is_heif(data) else _UNREADABLE  # a HEIF variant libheif cannot decode
    except Exception:  # noqa: BLE001 - whatever the decoders raise, the answer is "unreadable"
        return _UNREADABLE
    sys.stdout.buffer.write(out.getvalue())
    sys.stdout.buffer.flush()
    return 0


def main(argv: list[str]) -> int:
    """The child: render ``argv[0]`` ("image" or "pdf") from stdin to stdout within limits; ``argv[1:]``
    are the page and the largest side (1 and 480 when not given)."""
    _limit()
    if len(argv) == 3 and argv[1].isdigit() and argv[2].isdigit() and int(argv[2]) <= MAX_PAGE_SIDE:
        argv, page, side = argv[:1], int(argv[1]), int(argv[2])
    else:
        page, side = 1, MAX_SIDE
    try:
        if argv == ["pdf"]:
            return _pdf(page, side)
        if argv == ["image"] and page == 1:
            return _image(side)
    except MemoryError:
        return _OUT_OF_MEMORY
    return _UNREADABLE


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
