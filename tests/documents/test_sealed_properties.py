"""Properties of the sealed format, for any object and any damage (Hypothesis).

Whatever is done to a stored object (bits flipped anywhere, cut at any offset, any bytes
appended or inserted, chunks dropped, duplicated, swapped, or spliced in from another
object of the same tenant under the same data key), ``open_sealed`` yields exactly the
original chunks, or raises ``IntegrityError`` having yielded only a prefix of them: never
a byte that did not authenticate, never another exception. And an object that is not
byte for byte the stored one is always refused: every stored byte is authenticated.

Small chunk sizes (1 to 40 bytes) give objects of several chunks in a few hundred bytes,
so thousands of cases run in seconds; the format is the same at 1 MiB.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from uuid import UUID

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tenants.sealed import TAG_SIZE, IntegrityError, KeyRef, open_sealed, seal

TENANT = UUID("6f1c1a52-7e0b-4c1e-9a57-3b0f4a1d2c3e")
OBJECT = UUID("0b8e5d1a-2f4c-4e8a-b1d7-9c6a5e4f3a21")
OTHER_OBJECT = UUID("d2a7c9e4-5b1f-4a3c-8e6d-7f9b0a1c2e3d")
DEK = bytes(range(32))
WRAPPED = bytes(60)  # the reader takes the key from the caller (the catalogue), not from the header

# No example database: it would be a folder in the working tree. A failure prints its example.
PROPERTY = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Sealed:
    plaintext: bytes
    chunk_size: int
    blob: bytes
    header_len: int

    def expected_chunks(self) -> list[bytes]:
        """The chunks an intact object yields: full ones, then the rest (one empty chunk for an empty object)."""
        cs, p = self.chunk_size, self.plaintext
        return [p[i:i + cs] for i in range(0, len(p), cs)] or [b""]

    def segments(self, blob: bytes) -> tuple[bytes, list[bytes]]:
        """``blob`` cut where this object's header and chunks end (a damaged blob may not line up)."""
        full = self.chunk_size + TAG_SIZE
        head, body = blob[:self.header_len], blob[self.header_len:]
        return head, [body[i:i + full] for i in range(0, len(body), full)]


def make(plaintext: bytes, chunk_size: int, object_id: UUID = OBJECT) -> Sealed:
    parts = list(seal([plaintext], dek=DEK, tenant_id=TENANT, object_id=object_id,
                      key_ref=KeyRef(f"tenant:{TENANT}", 1), wrapped_dek=WRAPPED, chunk_size=chunk_size))
    return Sealed(plaintext, chunk_size, b"".join(parts), len(parts[0]))


def opened(blob: bytes) -> tuple[list[bytes], IntegrityError | None]:
    """What ``open_sealed`` yields from ``blob`` (as the object OBJECT of TENANT) before it stops, and why."""
    got: list[bytes] = []
    try:
        for chunk in open_sealed(io.BytesIO(blob), tenant_id=TENANT, object_id=OBJECT, dek_for=lambda _h: DEK):
            got.append(chunk)
    except IntegrityError as exc:
        return got, exc
    return got, None


def assert_exact_or_refused(s: Sealed, blob: bytes) -> None:
    """The property: all of the original, or a refusal after a chunk-granular prefix of it."""
    got, error = opened(blob)
    expected = s.expected_chunks()
    event("accepted" if error is None else "refused after authentic chunks" if got else "refused at chunk 0")
    if error is None:
        assert got == expected and b"".join(got) == s.plaintext
        assert blob == s.blob, "an altered object was accepted"
    else:
        assert blob != s.blob, f"the intact object was refused: {error}"
        assert got == expected[:len(got)], "a chunk that did not authenticate was released"
        assert len(got) < len(expected), "the whole plaintext was released, then refused"


@st.composite
def sealed_objects(draw: st.DrawFn) -> Sealed:
    chunk_size = draw(st.integers(1, 40))
    chunks = draw(st.integers(0, 8))  # 0: the empty object, a single empty chunk
    size = draw(st.integers((chunks - 1) * chunk_size + 1, chunks * chunk_size)) if chunks else 0
    return make(draw(st.binary(min_size=size, max_size=size)), chunk_size)


# --- the mutations -------------------------------------------------------------------------------------------

def _offset(data: st.DataObject, s: Sealed, end: int, label: str) -> int:
    """An offset below ``end``, in the header or in the chunks at equal odds (the header is most of a small object)."""
    head = min(s.header_len, end)
    choices = st.integers(0, head - 1) | st.integers(head, end - 1) if head < end else st.integers(0, end - 1)
    return data.draw(choices, label=label)


def _flip(data: st.DataObject, s: Sealed, blob: bytes) -> bytes:
    i, bit = _offset(data, s, len(blob), "flipped byte"), data.draw(st.integers(0, 7), label="bit")
    return blob[:i] + bytes([blob[i] ^ (1 << bit)]) + blob[i + 1:]


def _truncate(data: st.DataObject, s: Sealed, blob: bytes) -> bytes:
    return blob[:_offset(data, s, len(blob), "cut at")]


def _extend(data: st.DataObject, s: Sealed, blob: bytes) -> bytes:
    return blob + data.draw(st.binary(min_size=1, max_size=2 * (s.chunk_size + TAG_SIZE)), label="appended")


def _insert(data: st.DataObject, s: Sealed, blob: bytes) -> bytes:
    at = _offset(data, s, len(blob) + 1, "insert at")
    return blob[:at] + data.draw(st.binary(min_size=1, max_size=s.chunk_size + TAG_SIZE), label="inserted") + blob[at:]


def _drop(data: st.DataObject, s: Sealed, blob: bytes) -> bytes:
    head, chunks = s.segments(blob)
    if not chunks:
        return blob[:-1]
    del chunks[data.draw(st.integers(0, len(chunks) - 1), label="dropped")]
    return head + b"".join(chunks)


def _duplicate(data: st.DataObject, s: Sealed, blob: bytes) -> bytes:
    head, chunks = s.segments(blob)
    if not chunks:
        return blob + blob[-1:]
    i = data.draw(st.integers(0, len(chunks) - 1), label="duplicated")
    chunks.insert(data.draw(st.integers(0, len(chunks)), label="copied to"), chunks[i])
    return head + b"".join(chunks)


def _swap(data: st.DataObject, s: Sealed, blob: bytes) -> bytes:
    head, chunks = s.segments(blob)
    if len(chunks) < 2:
        return blob
    i, j = data.draw(st.lists(st.integers(0, len(chunks) - 1), min_size=2, max_size=2, unique=True), label="swapped")
    chunks[i], chunks[j] = chunks[j], chunks[i]
    return head + b"".join(chunks)


def _splice(data: st.DataObject, s: Sealed, blob: bytes) -> bytes:
    """Put in a chunk, or the header, of another object of the same tenant under the same data key.

    The donor holds the same plaintext half the time, and has the same object id half the
    time (a second seal of this object: another nonce prefix), the hardest donors there are.
    """
    same_plaintext = data.draw(st.booleans(), label="same plaintext")
    plaintext = s.plaintext if same_plaintext else data.draw(st.binary(max_size=8 * s.chunk_size), label="donor")
    donor = make(plaintext, s.chunk_size, data.draw(st.sampled_from([OBJECT, OTHER_OBJECT]), label="donor id"))
    donor_head, donor_chunks = donor.segments(donor.blob)
    head, chunks = s.segments(blob)
    how = data.draw(st.sampled_from(["header", "replace", "insert"]), label="splice")
    if how == "header":
        return donor_head + b"".join(chunks)
    piece = donor_chunks[data.draw(st.integers(0, len(donor_chunks) - 1), label="donor chunk")]
    if how == "replace" and chunks:
        chunks[data.draw(st.integers(0, len(chunks) - 1), label="replaced")] = piece
    else:
        chunks.insert(data.draw(st.integers(0, len(chunks)), label="inserted at"), piece)
    return head + b"".join(chunks)


MUTATIONS = {f.__name__.strip("_"): f for f in (_flip, _truncate, _extend, _insert, _drop, _duplicate, _swap,
                                                   _splice)}


# --- the properties --------------------------------------------------------------------------------------------

@PROPERTY
@given(sealed_objects())
def test_an_intact_object_opens_to_exactly_its_plaintext(s: Sealed) -> None:
    got, error = opened(s.blob)
    assert error is None and got == s.expected_chunks()


@settings(PROPERTY, max_examples=1500)
@given(sealed_objects(), st.sampled_from(sorted(MUTATIONS)), st.data())
def test_any_one_mutation_yields_the_original_or_a_refusal_after_authentic_chunks(s: Sealed, kind: str,
                                                                                  data: st.DataObject) -> None:
    assert_exact_or_refused(s, MUTATIONS[kind](data, s, s.blob))


@settings(PROPERTY, max_examples=1000)
@given(sealed_objects(), st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=2, max_size=4), st.data())
def test_any_sequence_of_mutations_yields_the_original_or_a_refusal_after_authentic_chunks(
        s: Sealed, kinds: list[str], data: st.DataObject) -> None:
    blob = s.blob
    for kind in kinds:
        blob = MUTATIONS[kind](data, s, blob) if blob else blob
    assert_exact_or_refused(s, blob)


@settings(PROPERTY, max_examples=600)
@given(sealed_objects(), st.data())
def test_chunks_spliced_from_another_object_of_the_same_tenant_and_key_are_refused(s: Sealed,
                                                                                   data: st.DataObject) -> None:
    assert_exact_or_refused(s, _splice(data, s, s.blob))
