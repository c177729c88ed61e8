"""The sealed format: what comes back is exactly what went in, or nothing of a damaged chunk.

Small chunk sizes keep the tampering cases readable; the format is the same at 1 MiB.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID, uuid4

import pytest

from tenants import sealed
from tenants.sealed import (
    CHUNK_SIZE,
    TAG_SIZE,
    Header,
    IntegrityError,
    KeyRef,
    open_sealed,
    read_header,
    seal,
    sealed_size,
)

CS = 64  # plaintext bytes per chunk in the tampering tests


@dataclass
class Sealed:
    blob: bytes
    dek: bytes
    tenant: UUID
    obj: UUID
    chunk_size: int
    header_len: int

    def chunks(self) -> list[bytes]:
        """The stored chunks (ciphertext and tag), split at the format's boundaries."""
        body, full = self.blob[self.header_len:], self.chunk_size + TAG_SIZE
        return [body[i:i + full] for i in range(0, len(body), full)] or [b""]

    @property
    def header(self) -> bytes:
        return self.blob[:self.header_len]


def make(plaintext: bytes, *, chunk_size: int = CS, pieces: int | None = None, tenant: UUID | None = None) -> Sealed:
    dek, tenant, obj = os.urandom(32), tenant or uuid4(), uuid4()
    data = [plaintext] if pieces is None else [plaintext[i:i + pieces] for i in range(0, len(plaintext), pieces)]
    out = list(seal(data, dek=dek, tenant_id=tenant, object_id=obj, key_ref=KeyRef(f"tenant:{tenant}", 1),
                    wrapped_dek=os.urandom(60), chunk_size=chunk_size))
    return Sealed(b"".join(out), dek, tenant, obj, chunk_size, len(out[0]))


def open_all(s: Sealed, blob: bytes | None = None, *, tenant: UUID | None = None,
             obj: UUID | None = None) -> tuple[list[bytes], IntegrityError | None]:
    """Everything ``open_sealed`` released before it stopped, and the error it stopped with."""
    got: list[bytes] = []
    try:
        for chunk in open_sealed(io.BytesIO(s.blob if blob is None else blob), tenant_id=tenant or s.tenant,
                                 object_id=obj or s.obj, dek_for=lambda _h: s.dek):
            got.append(chunk)
    except IntegrityError as exc:
        return got, exc
    return got, None


def refused(s: Sealed, blob: bytes, match: str, good_chunks: int, plaintext: bytes) -> None:
    """``blob`` is refused with ``match`` after releasing only the ``good_chunks`` authentic chunks."""
    got, error = open_all(s, blob)
    assert error is not None, "the damaged object was accepted"
    assert match in str(error)
    assert got == [plaintext[i * CS:(i + 1) * CS] for i in range(good_chunks)]


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


class TrickleReader:
    """A reader that returns at most a few bytes per call, as sockets and S3 bodies may."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self.data, self.pos, self.step = data, 0, step
        self.high_water = 0  # the furthest position read so far

    def read(self, n: int = -1) -> bytes:
        n = self.step if n < 0 else min(n, self.step)
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        self.high_water = max(self.high_water, self.pos)
        return out


# --- round trips -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17])
def test_any_size_comes_back_identical_and_sized_as_predicted(size: int) -> None:
    plaintext = os.urandom(size)
    s = make(plaintext, chunk_size=CHUNK_SIZE)
    got, error = open_all(s)
    assert error is None
    assert b"".join(got) == plaintext
    assert len(s.blob) == sealed_size(size, s.header_len)
    assert all(len(c) == CHUNK_SIZE for c in got[:-1])


@pytest.mark.parametrize("piece", [1, 5, CS - 1, CS, CS + 1, 1000])
def test_input_cut_in_any_piece_size_gives_the_same_chunks(piece: int) -> None:
    plaintext = os.urandom(7 * CS + 3)
    s = make(plaintext, pieces=piece)
    assert [len(c) for c in s.chunks()] == [CS + TAG_SIZE] * 7 + [3 + TAG_SIZE]
    got, error = open_all(s)
    assert error is None and b"".join(got) == plaintext


def test_an_empty_document_is_one_empty_final_chunk() -> None:
    s = make(b"")
    assert s.chunks() == [s.blob[s.header_len:]] and len(s.blob) - s.header_len == TAG_SIZE
    assert open_all(s) == ([b""], None)


def test_a_document_of_whole_chunks_ends_with_a_full_final_chunk_not_an_empty_one() -> None:
    s = make(os.urandom(3 * CS))
    assert [len(c) for c in s.chunks()] == [CS + TAG_SIZE] * 3


def test_reused_input_buffers_are_safe() -> None:
    buffer = bytearray(CS // 2)

    def reader_style() -> Iterator[bytearray]:
        for i in range(9):
            buffer[:] = bytes([i]) * len(buffer)
            yield buffer

    dek, tenant, obj = os.urandom(32), uuid4(), uuid4()
    blob = b"".join(seal(reader_style(), dek=dek, tenant_id=tenant, object_id=obj,
                         key_ref=KeyRef("tenant:x", 1), wrapped_dek=b"w", chunk_size=CS))
    out = b"".join(open_sealed(io.BytesIO(blob), tenant_id=tenant, object_id=obj, dek_for=lambda _h: dek))
    assert out == b"".join(bytes([i]) * (CS // 2) for i in range(9))


def test_short_reads_are_handled() -> None:
    plaintext = os.urandom(5 * CS + 9)
    s = make(plaintext)
    reader = TrickleReader(s.blob)
    out = b"".join(open_sealed(reader, tenant_id=s.tenant, object_id=s.obj, dek_for=lambda _h: s.dek))
    assert out == plaintext
    assert read_header(TrickleReader(s.blob, step=1)).raw == s.header


def test_sealing_streams_with_one_chunk_held() -> None:
    consumed = 0

    def source() -> Iterator[bytes]:
        nonlocal consumed
        for _ in range(100):
            consumed += 1
            yield b"x" * (CS // 4)

    stream = seal(source(), dek=os.urandom(32), tenant_id=uuid4(), object_id=uuid4(),
                  key_ref=KeyRef("tenant:x", 1), wrapped_dek=b"w", chunk_size=CS)
    next(stream)  # header
    next(stream)  # first chunk: out as soon as one byte beyond it arrived
    assert consumed == 5


def test_opening_reads_at_most_two_chunks_ahead_of_what_it_released() -> None:
    s = make(os.urandom(50 * CS))
    reader = TrickleReader(s.blob, step=10_000)
    stream = open_sealed(reader, tenant_id=s.tenant, object_id=s.obj, dek_for=lambda _h: s.dek)
    next(stream)
    assert reader.high_water <= s.header_len + 2 * (CS + TAG_SIZE)


def test_header_round_trips_every_field() -> None:
    s = make(b"abc")
    header = read_header(io.BytesIO(s.blob))
    assert isinstance(header, Header)
    assert (header.version, header.chunk_size, header.tenant_id, header.object_id) == (1, CS, s.tenant, s.obj)
    assert header.key_ref == KeyRef(f"tenant:{s.tenant}", 1) and len(header.wrapped_dek) == 60
    assert len(header.nonce_prefix) == 7 and header.raw == s.header


def test_sealed_size_counts_one_tag_per_chunk() -> None:
    assert sealed_size(0, 100) == 116
    assert sealed_size(CHUNK_SIZE, 100) == 100 + CHUNK_SIZE + 16
    assert sealed_size(CHUNK_SIZE + 1, 100) == 100 + CHUNK_SIZE + 1 + 32
    assert sealed_size(10, 50, chunk_size=3) == 50 + 10 + 4 * 16


def test_two_seals_of_the_same_plaintext_share_nothing() -> None:
    a, b = make(b"same bytes" * 20), make(b"same bytes" * 20)
    assert a.blob[a.header_len:] != b.blob[b.header_len:]
    assert read_header(io.BytesIO(a.blob)).nonce_prefix != read_header(io.BytesIO(b.blob)).nonce_prefix


# --- tampering ---------------------------------------------------------------------------------------------

PLAIN = os.urandom(5 * CS + 20)  # five full chunks and a short final one


@pytest.fixture
def s() -> Sealed:
    return make(PLAIN)


def test_a_flipped_bit_in_the_header_is_refused_before_any_plaintext(s: Sealed) -> None:
    # The last header byte is in the nonce prefix: structurally fine, so only authentication can notice.
    refused(s, flip(s.blob, s.header_len - 1), "chunk 0 failed authentication", 0, PLAIN)
    # A bit of the wrapped data key copy, of the key version, of the chunk size: same.
    refused(s, flip(s.blob, s.header_len - 20), "chunk 0 failed authentication", 0, PLAIN)


def test_a_flipped_bit_in_the_tenant_id_says_another_tenant(s: Sealed) -> None:
    refused(s, flip(s.blob, 9), "the object belongs to another tenant", 0, PLAIN)
    refused(s, flip(s.blob, 25), "the header belongs to another object", 0, PLAIN)


def test_a_flipped_bit_in_a_chunk_body_releases_only_the_chunks_before_it(s: Sealed) -> None:
    chunks = s.chunks()
    damaged = chunks[:3] + [flip(chunks[3], 10)] + chunks[4:]
    refused(s, s.header + b"".join(damaged), "chunk 3 failed authentication: the stored object was altered", 3,
            PLAIN)


def test_a_flipped_bit_in_a_tag_is_refused(s: Sealed) -> None:
    chunks = s.chunks()
    damaged = chunks[:2] + [flip(chunks[2], len(chunks[2]) - 1)] + chunks[3:]
    refused(s, s.header + b"".join(damaged), "chunk 2 failed authentication", 2, PLAIN)
    last = chunks[:-1] + [flip(chunks[-1], len(chunks[-1]) - 1)]
    refused(s, s.header + b"".join(last), "chunk 5 failed authentication", 5, PLAIN)


def test_a_removed_chunk_is_refused(s: Sealed) -> None:
    chunks = s.chunks()
    refused(s, s.header + b"".join(chunks[:2] + chunks[3:]), "chunk 2 failed authentication", 2, PLAIN)


def test_a_duplicated_chunk_is_refused(s: Sealed) -> None:
    chunks = s.chunks()
    refused(s, s.header + b"".join(chunks[:3] + [chunks[2]] + chunks[3:]), "chunk 3 failed", 3, PLAIN)


def test_a_duplicated_final_chunk_is_data_after_the_end() -> None:
    whole = os.urandom(3 * CS)
    t = make(whole)
    chunks = t.chunks()
    got, error = open_all(t, t.header + b"".join(chunks + [chunks[-1]]))
    assert error is not None and "data follows the final chunk" in str(error)
    assert got == [whole[:CS], whole[CS:2 * CS]]


def test_two_swapped_chunks_are_refused(s: Sealed) -> None:
    chunks = s.chunks()
    swapped = chunks[:1] + [chunks[2], chunks[1]] + chunks[3:]
    refused(s, s.header + b"".join(swapped), "chunk 1 failed authentication", 1, PLAIN)


def test_a_cut_off_final_chunk_is_truncation(s: Sealed) -> None:
    chunks = s.chunks()
    refused(s, s.header + b"".join(chunks[:-1]), "the stored object is truncated: its final chunk is missing", 4,
            PLAIN)


def test_a_cut_inside_the_final_chunk_is_refused(s: Sealed) -> None:
    refused(s, s.blob[:-5], "chunk 5 failed authentication", 5, PLAIN)
    refused(s, s.blob[:-(20 + TAG_SIZE) + 3], "the stored object is truncated: chunk 5 is cut short", 5, PLAIN)


def test_an_object_cut_after_its_header_is_truncation(s: Sealed) -> None:
    refused(s, s.header, "truncated: it has a header but no chunks", 0, PLAIN)


def test_trailing_bytes_after_a_full_final_chunk_are_named(s: Sealed) -> None:
    whole = os.urandom(2 * CS)
    t = make(whole)
    got, error = open_all(t, t.blob + b"appended")
    assert error is not None and "data follows the final chunk" in str(error)
    assert got == [whole[:CS]]


def test_trailing_bytes_after_a_short_final_chunk_are_refused(s: Sealed) -> None:
    # The final chunk's length is not stored, so the error can only say its chunk no longer authenticates.
    refused(s, s.blob + b"appended", "chunk 5 failed authentication", 5, PLAIN)
    refused(s, s.blob + os.urandom(CS + TAG_SIZE + 5), "chunk 5 failed authentication", 5, PLAIN)


def test_the_header_of_another_object_spliced_onto_this_body_is_refused(s: Sealed) -> None:
    other = make(os.urandom(CS * 2), tenant=s.tenant)
    # Opened as this object: the header names the other one.
    refused(s, other.header + s.blob[s.header_len:], "the header belongs to another object", 0, PLAIN)
    # Opened as the other object (its id and its key): the body is not bound to that header.
    got, error = open_all(other, other.header + s.blob[s.header_len:])
    assert got == [] and error is not None and "chunk 0 failed authentication" in str(error)


def test_a_header_rewritten_to_the_expected_ids_does_not_authenticate(s: Sealed) -> None:
    tenant, obj = uuid4(), uuid4()
    forged = s.blob[:9] + tenant.bytes + obj.bytes + s.blob[41:]
    got, error = open_all(s, forged, tenant=tenant, obj=obj)
    assert got == [] and error is not None and "chunk 0 failed authentication" in str(error)


def test_a_wrong_data_key_releases_nothing(s: Sealed) -> None:
    # Refused by the call itself, before a caller could start a response.
    with pytest.raises(IntegrityError, match="chunk 0 failed authentication"):
        open_sealed(io.BytesIO(s.blob), tenant_id=s.tenant, object_id=s.obj, dek_for=lambda _h: os.urandom(32))


def test_the_tenant_and_object_are_checked_before_the_key_is_asked_for(s: Sealed) -> None:
    asked: list[Header] = []

    def dek_for(header: Header) -> bytes:
        asked.append(header)
        return s.dek

    with pytest.raises(IntegrityError, match="another tenant"):
        open_sealed(io.BytesIO(s.blob), tenant_id=uuid4(), object_id=s.obj, dek_for=dek_for)
    with pytest.raises(IntegrityError, match="another object"):
        open_sealed(io.BytesIO(s.blob), tenant_id=s.tenant, object_id=uuid4(), dek_for=dek_for)
    assert asked == []


# --- malformed headers -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("blob", "match"), [
    (b"", "the stored object is empty"),
    (b"BO", "truncated: it ends inside the magic"),
    (b"%PDF-1.7 not ours at all" * 3, "not a sealed object"),
    (b"BOPV\x01\x00", "truncated: it ends inside the fixed fields"),
])
def test_input_that_is_not_a_sealed_object_is_refused_clearly(blob: bytes, match: str) -> None:
    with pytest.raises(IntegrityError, match=match):
        read_header(io.BytesIO(blob))


def _with(s: Sealed, offset: int, value: bytes) -> bytes:
    return s.blob[:offset] + value + s.blob[offset + len(value):]


def test_out_of_bounds_header_fields_are_refused(s: Sealed) -> None:
    key_len = len(f"tenant:{s.tenant}")
    cases = [
        (_with(s, 4, b"\x02"), "unsupported sealed format version 2"),
        (_with(s, 5, struct.pack(">I", 0)), "chunk size 0 is out of bounds"),
        (_with(s, 5, struct.pack(">I", 2**31)), "chunk size 2147483648 is out of bounds"),
        (_with(s, 41, struct.pack(">H", 0)), "key id length 0 is out of bounds"),
        (_with(s, 41, struct.pack(">H", 300)), "key id length 300 is out of bounds"),
        (_with(s, 43, b"\xff\xfe"), "the key id is not UTF-8"),
        (_with(s, 43 + key_len, struct.pack(">I", 0)), "key version 0"),
        (_with(s, 47 + key_len, struct.pack(">H", 0)), "wrapped data key length 0 is out of bounds"),
        (_with(s, 47 + key_len, struct.pack(">H", 5000)), "wrapped data key length 5000 is out of bounds"),
        (s.header[:-3], "truncated: it ends inside the nonce prefix"),
        (s.header[:45], "truncated: it ends inside the key id"),
    ]
    for blob, match in cases:
        with pytest.raises(IntegrityError, match=match):
            read_header(io.BytesIO(blob))


def test_the_writer_refuses_what_the_reader_would_refuse() -> None:
    with pytest.raises(ValueError, match="data key must be 32 bytes"):
        next(seal([b"x"], dek=b"short", tenant_id=uuid4(), object_id=uuid4(), key_ref=KeyRef("k", 1),
                  wrapped_dek=b"w"))
    with pytest.raises(ValueError, match="key id"):
        next(seal([b"x"], dek=os.urandom(32), tenant_id=uuid4(), object_id=uuid4(), key_ref=KeyRef("", 1),
                  wrapped_dek=b"w"))
    with pytest.raises(ValueError, match="chunk size"):
        next(seal([b"x"], dek=os.urandom(32), tenant_id=uuid4(), object_id=uuid4(), key_ref=KeyRef("k", 1),
                  wrapped_dek=b"w", chunk_size=0))


def test_the_chunk_counter_never_wraps(monkeypatch: pytest.MonkeyPatch) -> None:
    # 2**32 chunks cannot be produced in a test; the limit is a module constant, lowered here.
    s = make(os.urandom(4 * CS))
    monkeypatch.setattr(sealed, "_MAX_COUNTER", 2)
    with pytest.raises(ValueError, match="chunk counter would overflow"):
        make(os.urandom(4 * CS))
    got, error = open_all(s)
    assert error is not None and "counter overflow" in str(error)
    assert len(got) == 3
    assert open_all(make(os.urandom(3 * CS)))[1] is None
