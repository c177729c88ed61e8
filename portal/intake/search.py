"""Searching a tenant's documents by the words inside them, without the words ever being in the database.

The text intake read is sealed; what is indexed are blind tokens (``tenants.fields.blind_tokens``):
keyed hashes of each word under the tenant's field key, twice: the word as written in lower case
(``a:hóa``) and without diacritics (``u:hoa``), so "hoa don" finds "Hóa Đơn" and "HÓA ĐƠN", and a
query typed with its diacritics ranks the documents that have exactly those words first. A document
matches when it has every word of the query (a GIN index over the tokens); row-level security keeps
each tenant's records to itself, and another tenant's key would make other tokens anyway.

The cost, against a clear full-text index: whole words only (no prefixes, no stemming, no phrases),
and the snippet is made by unsealing the few documents shown. What the database learns: how many
distinct words a document has and which documents share a word, never the word.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass

from sqlalchemy import LargeBinary, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY

from portal.documents import services as vault
from portal.documents.models import Document
from portal.extensions import db
from portal.intake.chain import Intake, Step, register
from portal.intake.models import IntakeRecord
from portal.intake.steps import plain
from tenants.fields import blind_tokens
from tenants.models import User

PURPOSE = "intake.search"
MAX_TERMS = 20_000  # distinct words kept per document version (a long contract has a few thousand)
MAX_QUERY_WORDS = 12
_WORD = re.compile(r"[^\W_]{2,}")
_NUMBER = re.compile(r"\d[\d.,]*\d")  # 1.944.000 and 1,944,000 are also the word 1944000


@dataclass(frozen=True)
class Hit:
    document: Document
    exact: int  # query words found as written (with their diacritics)
    snippet: str


def words(text: str) -> list[str]:
    """The words of ``text``, lower case, in Unicode's composed form (as typed), each once, in order."""
    seen: dict[str, None] = {}
    text = unicodedata.normalize("NFC", text).lower()
    for word in _WORD.findall(text):
        seen.setdefault(word, None)
    for number in _NUMBER.findall(text):
        seen.setdefault(re.sub(r"[.,]", "", number), None)
    return list(seen)


def index_tokens(tenant_id: uuid.UUID, text: str) -> list[bytes]:
    """The blind tokens of a document's text: each word as written and without diacritics."""
    found = words(text)
    terms = {f"a:{w}" for w in found} | {f"u:{plain(w)}" for w in found}
    return blind_tokens(tenant_id, PURPOSE, sorted(terms)[:MAX_TERMS])


def search(actor: User, tenant_id: uuid.UUID, query: str, *, limit: int = 20) -> list[Hit]:
    """The live documents ``actor`` may see in the bound tenant whose current text has every word of
    ``query``, best first (most words as typed, then the newest)."""
    asked = words(query)[:MAX_QUERY_WORDS]
    if not asked:
        return []
    every = blind_tokens(tenant_id, PURPOSE, [f"u:{plain(w)}" for w in asked])
    exact = blind_tokens(tenant_id, PURPOSE, [f"a:{w}" for w in asked])
    tokens = IntakeRecord.search_tokens
    asked_exact = func.unnest(literal(exact, type_=ARRAY(LargeBinary))).table_valued("t").render_derived()
    exact_count = (select(func.count()).select_from(asked_exact).where(asked_exact.c.t == tokens.any_())
                   .scalar_subquery())
    rows = db.session.execute(
        select(Document, IntakeRecord, exact_count.label("exact"))
        .join(IntakeRecord, (IntakeRecord.document_id == Document.id)
              & (IntakeRecord.version == Document.current_version))
        .where(Document.id.in_(vault.visible_documents(actor).with_only_columns(Document.id)),
               tokens.contains(every))
        .order_by(exact_count.desc(), Document.created_at.desc()).limit(limit)).all()
    return [Hit(doc, int(n or 0), snippet(record.text or "", asked)) for doc, record, n in rows]


def snippet(text: str, asked: list[str], width: int = 160) -> str:
    """Some words around the first place the query's first word appears (without diacritics), else the start."""
    flat = plain(text)
    at = flat.find(plain(asked[0])) if asked else -1
    start = max(0, at - width // 3) if at >= 0 else 0
    piece = " ".join(text[start:start + width].split())
    return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")


def _has_text(it: Intake) -> bool:
    return bool(it.record.text)


def _index(it: Intake) -> str | None:
    it.record.search_tokens = index_tokens(it.record.tenant_id, it.record.text or "")
    return f"{len(it.record.search_tokens)} tokens"


register(Step("index", _has_text, _index), before="route")


# --- an e-invoice's XML and its PDF copy, paired -----------------------------------------------------------

RECENT_XML = 500  # e-invoices of the tenant a new PDF is compared with (the newest)


def _identity(invoice: dict) -> list[list[str]]:
    """The ways an e-invoice's PDF copy writes who issued it and which one it is, as word sets: the
    seller's tax code, the symbol (with or without the template digit) and the number (as is, or padded
    to 7 or 8 digits, as invoice software prints it)."""
    from stdnum.vn import mst

    seller, series, number = (invoice.get("seller") or {}).get("tax_code"), invoice.get("series"), invoice.get("number")
    if not (seller and series and number):
        return []
    symbols = {series.lower(), f"{invoice.get('template') or ''}{series}".lower()}
    numbers = {number, number.lstrip("0") or "0", number.zfill(7), number.zfill(8)}
    code = re.sub(r"\D", "", mst.compact(seller))
    return [[f"u:{code}", f"u:{symbol}", f"u:{n}"] for symbol in sorted(symbols) for n in sorted(numbers)]


def _join(one: IntakeRecord, other: IntakeRecord) -> None:
    """Pair an e-invoice and its PDF copy: the same invoice twice, but not a duplicate of itself."""
    one.paired_with, other.paired_with = other.document_id, one.document_id
    for a, b in ((one, other), (other, one)):
        if a.duplicate_of == b.document_id:
            a.duplicate_of = None


def _pairable(it: Intake) -> bool:
    return it.record.classified == "invoice" and bool(it.record.search_tokens)


def _pair(it: Intake) -> str | None:
    import json

    record = it.record
    tenant = record.tenant_id
    if record.extracted:  # an e-invoice: its PDF copy is a read document with all the words of one way
        for words_ in _identity(json.loads(record.extracted)):
            found = db.session.scalar(select(IntakeRecord).where(
                IntakeRecord.extracted.is_(None), IntakeRecord.document_id != record.document_id,
                IntakeRecord.paired_with.is_(None),  # a PDF copy already paired: a second e-invoice is a duplicate
                IntakeRecord.search_tokens.contains(blind_tokens(tenant, PURPOSE, words_)))
                .order_by(IntakeRecord.created_at.desc()).limit(1))
            if found is not None:
                _join(record, found)
                return str(found.document_id)
        return None
    mine = set(record.search_tokens or [])
    xmls = db.session.scalars(select(IntakeRecord).where(IntakeRecord.extracted.is_not(None),
                                                         IntakeRecord.document_id != record.document_id,
                                                         IntakeRecord.paired_with.is_(None))  # one copy each
                              .order_by(IntakeRecord.created_at.desc()).limit(RECENT_XML)).all()
    for xml in xmls:  # a PDF: one of the tenant's e-invoices whose identity it spells out
        if any(set(blind_tokens(tenant, PURPOSE, words_)) <= mine for words_ in _identity(json.loads(xml.extracted))):
            _join(record, xml)
            return str(xml.document_id)
    return None


register(Step("pair", _pairable, _pair), before="route")
