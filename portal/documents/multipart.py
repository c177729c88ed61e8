"""multipart/form-data read as a stream: fields and files one after another.

Werkzeug's form parser spools every file to a temporary file before the view
runs, which would put plaintext on disk and hold whole files. Here each file
part is an iterator of its bytes as they arrive, so an upload goes from the
socket through the sniffer and the cipher into storage without being held.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from werkzeug.sansio.multipart import NEED_DATA, Data, Epilogue, Field, File, MultipartDecoder

from portal.security import shown, unstorable

READ_SIZE = 64 * 1024
MAX_FIELD = 64 * 1024
MAX_PARTS = 200


class MalformedUpload(ValueError):
    """The request body is not well-formed multipart/form-data."""


@dataclass
class FieldPart:
    name: str
    value: str


@dataclass
class FilePart:
    name: str
    filename: str
    data: Iterator[bytes]  # consume it before asking for the next part, or it is skipped


def _events(stream: BinaryIO, boundary: bytes) -> Iterator[object]:
    decoder = MultipartDecoder(boundary, max_form_memory_size=4 * READ_SIZE + MAX_FIELD, max_parts=MAX_PARTS)
    ended = False
    while True:
        try:
            event = decoder.next_event()
        except ValueError as exc:
            raise MalformedUpload(str(exc)) from exc
        if event is NEED_DATA:
            if ended:
                raise MalformedUpload("the upload ended before its last part was complete")
            chunk = stream.read(READ_SIZE)
            ended = not chunk
            decoder.receive_data(chunk or None)
            continue
        yield event
        if isinstance(event, Epilogue):
            return


def _data(events: Iterator[object]) -> Iterator[bytes]:
    for event in events:
        if not isinstance(event, Data):
            raise MalformedUpload("a part ended without its data")
        if event.data:
            yield event.data
        if not event.more_data:
            return


def _refuse_unstorable(name: str, *texts: str) -> None:
    # The boundary (portal/boundary.py) leaves streamed bodies alone, and fields end up in text
    # columns, where PostgreSQL refuses a NUL. (File names are cleaned by content.display_name.)
    if any(unstorable(text) for text in texts):
        raise MalformedUpload(f"the form field '{shown(name)}' contains a NUL byte or an unpaired surrogate")


def iter_parts(stream: BinaryIO, boundary: bytes) -> Iterator[FieldPart | FilePart]:
    """The parts of a multipart body in order; file data is streamed, fields are small strings."""
    events = _events(stream, boundary)
    for event in events:
        if isinstance(event, Field):
            value = bytearray()
            for piece in _data(events):
                value += piece
                if len(value) > MAX_FIELD:
                    raise MalformedUpload(f"the form field {event.name!r} is too long")
            field = FieldPart(event.name, value.decode("utf-8", "replace"))
            _refuse_unstorable(field.name, field.name, field.value)
            yield field
        elif isinstance(event, File):
            data = _data(events)
            yield FilePart(event.name, event.filename or "", data)
            for _ in data:  # skip whatever the consumer did not read (a refused file)
                pass
        elif isinstance(event, Epilogue):
            return
