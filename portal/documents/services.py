"""Rules of the vault: upload, versions, duplicates, preview, download, re-filing.

Shared by the pages, the JSON API, the CLI and the jobs. The caller (the gate, for
requests) has checked the authorisation table and bound the tenant; queries here
are scoped by ``tenants.isolation``, never by hand, so another tenant's document
is simply not found. Client members see only their own uploads (the table's
``tenant:documents.view_all`` decides). Every view, preview and download is
written to the tenant's audit log, which the client reads as its access log.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Container, Iterable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask import Flask, current_app, has_app_context
from flask_babel import force_locale
from flask_babel import gettext as _
from itsdangerous import Signer
from sqlalchemy import func, select, text, tuple_
from sqlalchemy.exc import IntegrityError as UniqueViolation
from sqlalchemy.orm import aliased, lazyload
from werkzeug.exceptions import NotFound

from portal import mail
from portal.documents import content, vault
from portal.documents.models import Document, DocumentVersion, RequestItem, StoredObject
from portal.documents.previews import PREVIEW_KINDS
from portal.documents.storage import ObjectMissing, Storage, storage_from_config
from portal.events import announce
from portal.extensions import commit_keeping_loaded, db
from tenants import audit
from tenants.audit import AuditEvent
from tenants.context import Scope, bound, current_scope
from tenants.keyring import Keyring, KeyUnavailable, app_keyring
from tenants.lookups import parse_id, row_or_404
from tenants.models import Tenant, User, utcnow
from tenants.outages import dependency_down
from tenants.policy import Role, allowed
from tenants.sealed import IntegrityError as SealedIntegrityError
from tenants.sealed import KeyRef, PlaintextStream

PAGE = 50
MAX_TAGS = 10
_TAG = re.compile(r"[^\w\- ]+", re.UNICODE)


class DocumentError(ValueError):
    """A refusal the user can act on; ``status`` is the HTTP status to answer with."""

    status = 422


class Unreadable(DocumentError):
    """The stored copy cannot be given out: damaged, missing, or its key destroyed. Nothing was sent."""

    status = 502


# --- the vault's parts, one per process ------------------------------------------------

def vault_storage() -> Storage:
    """The object storage configured for this app (built once per process)."""
    ext = current_app.extensions.setdefault("vault", {})
    if "storage" not in ext:
        ext["storage"] = storage_from_config(current_app.config)
    return ext["storage"]


def vault_keyring() -> Keyring:
    """The keyring configured for this app (built once per process)."""
    return app_keyring()


# An upload (or a thumbnail, or an export) holds its tenant's key lock, shared, from the moment it
# wraps a data key under the current key version until it commits the object's catalogue row;
# retiring a key version takes the lock exclusively (``custody``). So no version is destroyed while
# an upload that used it can still commit, and uploads never wait for each other.
_KEY_USE = text("select pg_advisory_xact_lock_shared(hashtextextended(:k, 0))")
# The catalogue step of a tenant's uploads, one at a time: the quota is checked against what others stored.
_QUOTA = text("select pg_advisory_xact_lock(hashtextextended(:k, 0))")


def key_lock_name(tenant_id: uuid.UUID) -> str:
    """The advisory lock that uploads hold shared and key retirement exclusively."""
    return f"keys:{tenant_id}"


def store_sealed(tenant_id: uuid.UUID, chunks: Iterable[bytes]) -> vault.StoredObject:
    """Seal and store ``chunks`` for the bound tenant; commit its catalogue row in this same transaction."""
    db.session.execute(_KEY_USE, {"k": key_lock_name(tenant_id)})
    return vault.store(vault_storage(), vault_keyring(), tenant_id, chunks)


def read_object(obj: StoredObject) -> Iterator[bytes]:
    """The plaintext of a stored object, chunk by chunk, each authenticated before it is given.

    The header and the first chunk are checked before this returns, so a damaged or
    transplanted object, a missing one or a destroyed key fails here, before an answer starts.
    """
    return vault.open_object(vault_storage(), vault_keyring(), obj.tenant_id, obj.id, obj.storage_key,
                             KeyRef(obj.key_id, obj.key_version), obj.wrapped_dek)


# --- parsing what users type -----------------------------------------------------------

def parse_category(raw: str | None) -> str:
    value = (raw or "other").strip()
    if value not in content.CATEGORIES:
        raise DocumentError(_("Choose a category: invoice, receipt, bank statement, payroll input, "
                              "contract or other."))
    return value


def parse_period(raw: str | None) -> date | None:
    """'2026-03' → 1 March 2026; empty → None."""
    value = (raw or "").strip()
    if not value:
        return None
    match = re.fullmatch(r"(\d{4})-(\d{1,2})", value)
    if not match or not 1 <= int(match[2]) <= 12 or not 2000 <= int(match[1]) <= 2100:
        raise DocumentError(_("Give the month as YYYY-MM, for example 2026-03."))
    return date(int(match[1]), int(match[2]), 1)


def parse_tags(raw: str | Iterable[str] | None) -> list[str]:
    """Free tags, comma-separated: trimmed, lower-cased, de-duplicated, at most ten."""
    items = raw.split(",") if isinstance(raw, str) else list(raw or [])
    tags: list[str] = []
    for item in items:
        tag = _TAG.sub("", str(item)).strip().lower()[:40]
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise DocumentError(_("Use at most %(n)d tags.", n=MAX_TAGS))
    return tags


# --- reading ---------------------------------------------------------------------------

def _uid(actor: User | None) -> uuid.UUID | None:
    return actor.id if actor is not None else None  # None: the system (CLI imports)


def _sees_all() -> bool:
    return allowed(current_scope().role, "tenant:documents.view_all")


def _visible(actor: User | None, *, trashed: bool | None = False):  # noqa: ANN202
    """The documents the actor may see: those out of the trash (``trashed``: in it; None: both)."""
    query = select(Document)
    if actor is not None and not _sees_all():
        query = query.where(Document.uploaded_by_id == actor.id)
    if trashed is not None:
        query = query.where(Document.trashed_at.is_not(None) if trashed else Document.trashed_at.is_(None))
    return query


def visible_documents(actor: User | None):  # noqa: ANN201 - a Select of Document
    """The live documents ``actor`` may see (members: their own uploads), as a query other areas narrow."""
    return _visible(actor)


def get_document(actor: User, document_id: uuid.UUID | str, *, trashed: bool | None = False,
                 lock: bool = False) -> Document:
    """A document the actor may see, or 404 (the same for another tenant's and a missing one).

    A document in the trash is found only when ``trashed`` asks for it (True: only those; None:
    either): downloads, previews, uploads of a version and links to tasks never see one. ``lock``
    takes its row (``FOR UPDATE``) for a change that must not meet another at the same moment.
    """
    return row_or_404(_visible(actor, trashed=trashed).where(Document.id == parse_id(str(document_id))), Document,
                      lock=lock)


@dataclass(frozen=True)
class DocumentPage:
    documents: list[Document]
    next_key: tuple[datetime, uuid.UUID] | None  # (created_at, id) of the last one when there is more


def list_documents(actor: User, *, category: str | None = None, period: date | None = None,
                   tag: str | None = None, q: str | None = None,
                   after: tuple[datetime, uuid.UUID] | None = None, limit: int = PAGE) -> DocumentPage:
    """Newest first, filtered; ``after`` continues after the (created_at, id) of a page's last one."""
    query = _visible(actor).order_by(Document.created_at.desc(), Document.id.desc())
    if category:
        query = query.where(Document.category == parse_category(category))
    if period:
        query = query.where(Document.period == period)
    if tag:
        query = query.where(Document.tags.contains([tag.strip().lower()]))
    if q:
        query = query.where(Document.title.ilike(f"%{_like(q.strip()[:100])}%", escape="\\"))
    if after:
        query = query.where(tuple_(Document.created_at, Document.id) < tuple_(*after))
    rows = list(db.session.scalars(query.limit(limit + 1)))
    page = rows[:limit]
    return DocumentPage(page, (page[-1].created_at, page[-1].id) if len(rows) > limit else None)


@dataclass(frozen=True)
class Recent:
    """A document as the home page lists it."""

    id: uuid.UUID
    title: str


def recent_documents(actor: User, limit: int = 4) -> list[Recent]:
    """The newest documents the actor may see, as (id, title) only: cheap enough for a home page."""
    query = _visible(actor).with_only_columns(Document.id, Document.title).order_by(
        Document.created_at.desc(), Document.id.desc()).limit(limit)
    return [Recent(*row) for row in db.session.execute(query)]


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# Built once: the documents page and every upload read it.
_USED = select(func.coalesce(func.sum(StoredObject.size), 0)).where(StoredObject.purpose == "content")


def usage(tenant: Tenant) -> tuple[int, int]:
    """(bytes stored, quota) for the bound tenant: content objects only, each counted once."""
    used = db.session.scalar(_USED) or 0
    quota = tenant.storage_quota_bytes or current_app.config["TENANT_QUOTA_BYTES"]
    return int(used), int(quota)


def view_document(actor: User, tenant: Tenant, document_id: str, ip: str | None, *,
                  with_trash: bool = False) -> Document:
    """Open a document's page; the view is written to the access log.

    ``with_trash``: one in the trash is found too (for those who may see the trash).
    """
    doc = get_document(actor, document_id, trashed=None if with_trash else False)
    _record("document.viewed", actor, tenant, doc, ip)
    db.session.commit()
    return doc


# --- upload ----------------------------------------------------------------------------

@dataclass
class UploadResult:
    """What happened to one file: stored, linked to an identical one, or refused (and why)."""

    name: str
    status: str  # stored | version | duplicate | refused
    message: str
    document: Document | None = None
    code: str | None = None
    # Refused only because the chosen category does not take this kind of file: the ones that do.
    categories: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status != "refused"


@dataclass(frozen=True)
class UploadTarget:
    """Where an upload goes: its category, month and tags, or a new version, or a request item."""

    category: str = "other"
    period: date | None = None
    tags: tuple[str, ...] = ()
    document: Document | None = None
    item: RequestItem | None = None


def upload_target(actor: User, *, category: str | None = None, period: str | None = None,
                  tags: str | Iterable[str] | None = None, document_id: str | None = None,
                  item_id: str | None = None) -> UploadTarget:
    """Check the form fields of an upload before any byte of the file is read."""
    document = get_document(actor, document_id) if document_id else None
    item = None
    if item_id:
        item = db.session.get(RequestItem, parse_id(item_id))
        if item is None:
            raise NotFound()
    # A requested item files what answers it under the category it asked for, whatever the form says.
    chosen = item.category if item else (category or (document.category if document else None))
    return UploadTarget(
        category=parse_category(chosen),
        period=parse_period(period) if period else (document.period if document else None),
        tags=tuple(parse_tags(tags)) if tags else tuple(document.tags if document else ()),
        document=document, item=item,
    )


def upload_limit(tenant: Tenant) -> int:
    """The most bytes the next file may have: the per-file limit or what is left of the quota."""
    return limit_for(*usage(tenant))


def limit_for(used: int, quota: int) -> int:
    """``upload_limit`` from a ``usage`` already read."""
    return max(0, min(current_app.config["UPLOAD_MAX_BYTES"], quota - used))


def _mib(n: int, *, up: bool = False) -> str:
    """Bytes as people read them: MB (KB under one MB), to a tenth. A file's size rounds up and a limit's
    down, so a file over a limit never reads as the limit itself ("200.1 MB; at most 200 MB")."""
    unit, scale = ("MB", 1024 * 1024) if n >= 1024 * 1024 else ("KB", 1024)
    tenths = math.ceil(n * 10 / scale) if up else math.floor(n * 10 / scale)
    return f"{tenths // 10}.{tenths % 10} {unit}" if tenths % 10 else f"{tenths // 10} {unit}"


def refuse_early(tenant: Tenant, size: int | None) -> str | None:
    """A message when a declared size is already over the limit, before reading the body."""
    if size is None:
        return None
    if size > current_app.config["UPLOAD_MAX_BYTES"]:
        return _("This file is %(size)s; files may be at most %(limit)s. Split it or compress it, then upload "
                 "again.", size=_mib(size, up=True), limit=_mib(current_app.config["UPLOAD_MAX_BYTES"]))
    used, quota = usage(tenant)
    if used + size > quota:
        return _storage_full(used, quota)
    return None


def _storage_full(used: int, quota: int) -> str:
    return _("Your storage is full (%(used)s of %(quota)s used). Ask your provider for more space.",
             used=_mib(used), quota=_mib(quota))


class _Inspector:
    """Looks at the plaintext as it streams to storage: type from the first bytes, size cap."""

    def __init__(self, category: str, used: int, quota: int) -> None:
        self.category, self.used, self.quota = category, used, quota
        self.limit = limit_for(used, quota)
        self.head = bytearray()
        self.sniffed: content.Sniffed | None = None
        self.size = 0

    def wrap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.size += len(chunk)
            if self.size > self.limit:
                raise content.Refused("too_large", _too_large(self.used, self.quota))
            if self.sniffed is None:
                self.head += chunk
                if len(self.head) < content.HEAD_BYTES:
                    continue
                self._sniff()
                yield bytes(self.head)
                continue
            yield chunk
        if self.sniffed is None:
            self._sniff()  # raises Refused("empty") for an empty file
            yield bytes(self.head)

    def _sniff(self) -> None:
        self.sniffed = content.sniff(bytes(self.head))
        if self.sniffed.kind != "zip":  # a ZIP may be a workbook: decided once it is stored
            content.check_allowed(self.category, self.sniffed.kind)


def _too_large(used: int, quota: int) -> str:
    limit = current_app.config["UPLOAD_MAX_BYTES"]
    if quota - used < limit:
        return _storage_full(used, quota)
    return _("This file is larger than %(limit)s. Split it or compress it, then upload again.", limit=_mib(limit))


def refusal_message(exc: content.Refused) -> str:
    """The user's message for a refused file, in their language."""
    return _(exc.message, **exc.params) if getattr(exc, "params", None) else _(exc.message)


def upload(actor: User | None, tenant: Tenant, chunks: Iterable[bytes], *, filename: str | None,
           target: UploadTarget, ip: str | None = None, from_client: bool = False) -> UploadResult:
    """Store one file: sniff, encrypt, store; recognise a duplicate; keep versions; audit; queue a preview.

    Nothing is kept when the file is refused (the storage write is aborted or the
    object deleted), and the message says what was wrong and what to do. ``from_client``: the file
    comes from the client's side although no user of theirs stores it (a mail from a registered
    address), so it is paused with the client's uploads.
    """
    name = content.display_name(filename)
    client_side = from_client or (actor is not None and not actor.provider_role)
    if tenant.uploads_suspended_reason and client_side:
        # Set by billing for non-payment (only where the provider switched that on); the provider's own
        # people and the system (a statement's PDF) still store files.
        return UploadResult(name, "refused", _("Uploads are paused because a statement is overdue. Once it is "
                                               "paid, uploads open again at once; ask your provider if you "
                                               "think this is a mistake."), code="suspended")
    inspector = _Inspector(target.category, *usage(tenant))
    storage = vault_storage()
    try:
        stored = store_sealed(tenant.id, inspector.wrap(chunks))
    except content.Refused as exc:
        return _refused(name, exc, target)
    try:
        return _keep(actor, tenant, stored, inspector, name, target, ip)
    except content.Refused as exc:
        db.session.rollback()
        storage.delete(stored.storage_key)
        return _refused(name, exc, target)
    except BaseException as exc:
        with suppress(Exception):  # a lost connection: its transaction went with it
            db.session.rollback()
        if dependency_down(exc) == "database":
            # The connection went away: the commit may have reached the server, so the object stays. At
            # worst it is stored without its row, and nothing lists or serves it (ciphertext under a random key).
            raise
        # Nothing refers to the object once the transaction is gone: never leave it in storage.
        storage.delete(stored.storage_key)
        raise


def _refused(name: str, exc: content.Refused, target: UploadTarget) -> UploadResult:
    """A refused file's result; when only the category was wrong for a new document, the categories
    that take it (a version or a requested item keeps the category it has)."""
    choices = ()
    kind = exc.params.get("kind")  # set when a kind we take met a category that does not take it
    if exc.code == "type_not_allowed" and kind in content.KINDS and target.document is None and target.item is None:
        choices = tuple(content.accepting(kind))
    return UploadResult(name, "refused", refusal_message(exc), code=exc.code, categories=choices)


def _keep(actor: User | None, tenant: Tenant, stored: vault.StoredObject, inspector: _Inspector, name: str,
          target: UploadTarget, ip: str | None) -> UploadResult:
    """The stored object's type (a ZIP may be a workbook), its catalogue row and its document."""
    storage, keyring = vault_storage(), vault_keyring()
    sniffed = inspector.sniffed
    assert sniffed is not None  # noqa: S101 - store() read the whole input through the inspector
    kind, mime, extension = sniffed.kind, sniffed.mime, sniffed.extension
    if kind == "zip":
        kind = content.classify_zip(vault.open_object(storage, keyring, tenant.id, stored.object_id,
                                                      stored.storage_key, stored.key_ref, stored.wrapped_dek))
        content.check_allowed(target.category, kind)
        if kind == "xlsx":
            mime, extension = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"
    if not name.lower().endswith("." + extension):
        # Our extension, from the content, so the download opens with the right program.
        name = content.display_name(f"{name.rsplit('.', 1)[0] if '.' in name else name}.{extension}")
    obj, duplicate_of = _catalogue(tenant, stored, kind, mime)
    return _file(actor, tenant, obj, duplicate_of, name, target, ip)


def stored_row(stored: vault.StoredObject, tenant_id: uuid.UUID, purpose: str, kind: str, mime: str,
               preview: str = "none") -> StoredObject:
    """The catalogue row of an object just stored: what it is, and its wrapped data key."""
    return StoredObject(id=stored.object_id, tenant_id=tenant_id, purpose=purpose, storage_key=stored.storage_key,
                        sha256=stored.sha256, size=stored.size, sealed_size=stored.sealed_size, kind=kind, mime=mime,
                        key_id=stored.key_ref.key_id, key_version=stored.key_ref.version,
                        wrapped_dek=stored.wrapped_dek, preview=preview)


def _catalogue(tenant: Tenant, stored: vault.StoredObject, kind: str, mime: str) -> tuple[StoredObject, bool]:
    """The catalogue row for a stored object; an identical one of the tenant wins (the new copy goes)."""
    def same_content() -> StoredObject | None:
        return db.session.scalar(select(StoredObject).where(StoredObject.purpose == "content",
                                                            StoredObject.sha256 == stored.sha256))

    existing = same_content()
    if existing is None:
        # Two uploads at once must not together pass the quota: re-read it, one tenant's upload at a time.
        db.session.execute(_QUOTA, {"k": f"quota:{tenant.id}"})
        used, quota = usage(tenant)
        if used + stored.size > quota:
            raise content.Refused("too_large", _storage_full(used, quota))
        obj = stored_row(stored, tenant.id, "content", kind, mime, "pending" if kind in PREVIEW_KINDS else "none")
        try:
            with db.session.begin_nested():
                db.session.add(obj)
            return obj, False
        except UniqueViolation:  # the same file, uploaded at the same moment by someone else
            existing = same_content()
            if existing is None:
                raise
    vault_storage().delete(stored.storage_key)
    return existing, True


def _file(actor: User | None, tenant: Tenant, obj: StoredObject, duplicate: bool, name: str,
          target: UploadTarget, ip: str | None) -> UploadResult:
    doc = target.document
    if doc is not None:
        # The document's row, locked: two new versions at once get numbers one after the other. An approval
        # of the previous version binds to that version's SHA-256, so it can never count for this one; the
        # work area voids it when it hears of this version (``document.version_added``).
        doc = db.session.get(Document, doc.id, with_for_update={"of": Document}, populate_existing=True)
        latest = db.session.scalar(select(DocumentVersion.object_id).where(DocumentVersion.document_id == doc.id)
                                   .order_by(DocumentVersion.number.desc()).limit(1))
        if latest == obj.id:
            db.session.commit()  # nothing changed; the object stays (it is this version's)
            return UploadResult(name, "duplicate", _("This file is already the current version of “%(title)s”; "
                                                     "nothing was changed.", title=doc.title), doc)
        doc.current_version += 1
        doc.updated_at = utcnow()
        db.session.add(DocumentVersion(document=doc, number=doc.current_version, object_id=obj.id,
                                       filename=name, uploaded_by_id=_uid(actor)))
        status, message = "version", _("Stored as version %(n)d of “%(title)s”; the earlier versions are kept.",
                                       n=doc.current_version, title=doc.title)
        action = "document.version_added"
    else:
        earlier = db.session.scalar(_visible(actor).join(DocumentVersion).where(DocumentVersion.object_id == obj.id)
                                    .order_by(Document.created_at).limit(1)) if duplicate else None
        if earlier is not None:
            doc, status, action = earlier, "duplicate", "document.duplicate_linked"
            message = _("You uploaded this file before, as “%(title)s”; it was linked, not stored twice.",
                        title=earlier.title)
            if target.item is not None and earlier.category != target.item.category:
                message += " " + _answer_with_earlier(actor, tenant, earlier, target.item, ip)
        else:
            doc = Document(tenant_id=tenant.id, title=name, category=target.category, period=target.period,
                           tags=list(target.tags), uploaded_by_id=_uid(actor), current_version=1)
            db.session.add(doc)
            db.session.add(DocumentVersion(document=doc, number=1, object_id=obj.id, filename=name,
                                           uploaded_by_id=_uid(actor)))
            status, action = "stored", "document.uploaded"
            message = _("Stored, encrypted, as “%(title)s”.", title=name)
    db.session.flush()
    if status in ("stored", "version"):
        # Intake (preview, text, routing to a task) and the work (approvals) listen: the vault only announces.
        announce("document.stored" if status == "stored" else "document.version_added", tenant.id, doc.id,
                 doc.current_version)
    if target.item is not None and target.item.fulfilled_at is None:
        target.item.document_id, target.item.fulfilled_at, target.item.fulfilled_by_id = doc.id, utcnow(), _uid(actor)
        # Answered "not applicable" before, and found after all: received now.
        target.item.not_applicable_at = target.item.not_applicable_by_id = target.item.not_applicable_reason = None
        audit.record("request.item_fulfilled", audit.Actor.of(actor), tenant_id=tenant.id,
                     object_type="request_item", object_id=target.item.id, ip=ip,
                     data={"name": target.item.description})
    _record(action, actor, tenant, doc, ip, size=obj.size, category=doc.category)
    db.session.commit()
    return UploadResult(name, status, message, doc)


def _answer_with_earlier(actor: User | None, tenant: Tenant, earlier: Document, item: RequestItem,
                         ip: str | None) -> str:
    """A requested item answered with a file uploaded before under another category.

    Filed as "other" (nobody chose), it takes the item's category (audited as a re-filing);
    filed as something else, it is most likely the wrong file, and nothing is linked.
    """
    if earlier.category != "other":
        raise content.Refused("filed_elsewhere", content.FILED_ELSEWHERE, {
            "title": earlier.title, "filed": _(content.CATEGORY_LABELS[earlier.category]),
            "asked": _(content.CATEGORY_LABELS[item.category])})
    earlier.category, earlier.updated_at = item.category, utcnow()
    _record("document.refiled", actor, tenant, earlier, ip, before={"category": "other"},
            after={"category": item.category})
    return _("It is now filed as %(category)s, as this request asks.",
             category=_(content.CATEGORY_LABELS[item.category]))


def _record(action: str, actor: User | None, tenant: Tenant, doc: Document, ip: str | None, **data: object) -> None:
    audit.record(action, audit.Actor.of(actor), tenant_id=tenant.id, object_type="document", object_id=doc.id,
                 ip=ip, data={"name": doc.title, **data})


# --- re-filing -------------------------------------------------------------------------

KEEP: Any = object()  # "leave this field as it is" (a partial update)


def parse_title(raw: str | None) -> str:
    """A document's title: trimmed, 1 to 200 characters."""
    title = (raw or "").strip()
    if not title:
        raise DocumentError(_("Give the document a title: spaces alone are not a title."))
    if len(title) > 200:
        raise DocumentError(_("A document's title can be at most 200 characters."))
    return title


def refile(actor: User, tenant: Tenant, document_id: str, *, title: str | None = KEEP, category: str | None = KEEP,
           period: str | None = KEEP, tags: str | Iterable[str] | None = KEEP, ip: str | None) -> Document:
    """Rename a document, or change its category, month or tags (the client picks, the provider may correct).

    Recorded as ``document.refiled`` with the title, category and month before and after.
    """
    doc = get_document(actor, document_id)
    # Everything is parsed before anything changes: a refusal leaves the document as it was.
    changes = {name: parse(value) for name, value, parse in (
        ("title", title, parse_title), ("category", category, parse_category), ("period", period, parse_period),
        ("tags", tags, parse_tags)) if value is not KEEP}
    before = {"title": doc.title, "category": doc.category, "period": doc.period.isoformat() if doc.period else None}
    for name, value in changes.items():
        setattr(doc, name, value)
    doc.updated_at = utcnow()
    _record("document.refiled", actor, tenant, doc, ip, before=before,
            after={"title": doc.title, "category": doc.category,
                   "period": doc.period.isoformat() if doc.period else None})
    db.session.commit()
    return doc


# --- download and preview ---------------------------------------------------------------

@dataclass(frozen=True)
class Download:
    """A version ready to send: its name, type, size and plaintext.

    ``chunks`` is either plaintext that has all authenticated already (objects up to
    ``DOWNLOAD_VERIFY_MAX_BYTES``) or a stream that authenticates each chunk as it goes and
    writes the access log when it ends (``_stream``); it may be read after the request's
    contexts are gone, as a WSGI server reads a response body.
    """

    filename: str
    mime: str
    size: int
    chunks: Iterator[bytes]


def _version(doc: Document, number: int | str | None) -> DocumentVersion:
    if number in (None, ""):
        return doc.latest
    for version in doc.versions:
        if str(version.number) == str(number):
            return version
    raise NotFound()


def download(actor: User | None, tenant: Tenant, document_id: str, *, version: int | str | None = None,
             ip: str | None = None) -> Download:
    """A version's plaintext, never given out as good unless every chunk of it authenticated.

    Up to ``DOWNLOAD_VERIFY_MAX_BYTES`` the object is read and authenticated whole here, and
    the download is in the access log before a byte leaves: damage anywhere raises
    ``Unreadable`` (502) before the answer starts, like damage in chunk 0. We keep the
    plaintext rather than check in a first pass and read again: one storage read, and what is
    sent is exactly what authenticated (a second read could meet a different object). A larger
    object is streamed (``_stream``). Every refusal goes through ``report_unreadable``.
    """
    doc = get_document(actor, document_id)
    ver = _version(doc, version)
    obj = ver.object
    served = _Served.of(actor, tenant, doc, obj, ip)
    if obj.size > current_app.config["DOWNLOAD_VERIFY_MAX_BYTES"]:
        return Download(ver.filename, obj.mime, obj.size, _stream(served, _open_checked(served, obj), ver.number))
    result = Download(ver.filename, obj.mime, obj.size, iter(_read_whole(served, obj)))
    _record("document.downloaded", actor, tenant, doc, ip, version=ver.number)
    db.session.commit()
    return result


@dataclass(frozen=True)
class _Served:
    """Who is given which object, as plain values: a stream still has them after its request ended."""

    app: Flask
    actor: audit.Actor
    scope: Scope
    tenant_id: uuid.UUID
    tenant_slug: str
    document_id: uuid.UUID
    title: str  # for the tenant's own access log only: never logged, never e-mailed
    object_id: uuid.UUID
    ip: str | None

    @classmethod
    def of(cls, actor: User | None, tenant: Tenant, doc: Document, obj: StoredObject, ip: str | None) -> _Served:
        return cls(current_app._get_current_object(), audit.Actor.of(actor),  # type: ignore[attr-defined]
                   current_scope(), tenant.id, tenant.slug, doc.id, doc.title, obj.id, ip)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """The app context and the scope to write in.

        A stream is read after its view returned, when the request's contexts are gone (and
        perhaps in another ``contextvars`` context), so it brings its own.
        """
        with nullcontext() if has_app_context() else self.app.app_context(), bound(self.scope):
            yield

    def record(self, action: str, **data: object) -> None:
        """Write ``action`` to the tenant's access log, shaped like ``_record``'s events, and commit."""
        with self.writing():
            audit.record(action, self.actor, tenant_id=self.tenant_id, object_type="document",
                         object_id=self.document_id, ip=self.ip,
                         data={"name": self.title, **{k: v for k, v in data.items() if v is not None}})
            db.session.commit()


def _open_checked(served: _Served, obj: StoredObject) -> PlaintextStream:
    """Open an object for sending: header and chunk 0 checked; a failure is reported and refused, nothing sent."""
    try:
        return read_object(obj)  # vault.open_object's PlaintextStream
    except (SealedIntegrityError, ObjectMissing, KeyUnavailable) as exc:
        raise report_unreadable(served, exc, chunk=0 if isinstance(exc, SealedIntegrityError) else None) from exc


def _read_whole(served: _Served, obj: StoredObject) -> list[bytes]:
    """An object's plaintext chunks, every one authenticated (to the final flag) before any is returned."""
    chunks = _open_checked(served, obj)
    body: list[bytes] = []
    try:
        for chunk in chunks:
            body.append(chunk)
    except SealedIntegrityError as exc:
        raise report_unreadable(served, exc, chunk=len(body)) from exc
    finally:
        chunks.close()
    return body


def _stream(served: _Served, chunks: PlaintextStream, version: int) -> Iterator[bytes]:
    """A large object's plaintext as it authenticates; the access log says what really left.

    One chunk is held back, so ``document.downloaded`` is committed once the last chunk
    authenticated and before it leaves. When a later chunk fails, the failure is reported
    (``report_unreadable``: ``document.unreadable`` with the chunk and the bytes already sent)
    and raised: the WSGI server then drops the connection short of the declared
    Content-Length, so no client can take the file for complete. A client that goes away
    part-way (or a storage error) still leaves the bytes it was given in the access log.
    """
    released, recorded = 0, False
    try:
        held, authentic = next(chunks, b""), 1  # chunk 0 authenticated when the stream was opened
        try:
            for following in chunks:
                authentic += 1
                released += len(held)
                yield held
                held = following
        except SealedIntegrityError as exc:
            recorded = True
            raise report_unreadable(served, exc, chunk=authentic, sent=released) from exc
        served.record("document.downloaded", version=version)
        recorded = True
        yield held
    finally:
        chunks.close()
        if not recorded and released:
            served.record("document.downloaded", version=version, complete=False, sent=released)


ALERT_EVERY = 24 * 3600  # seconds: the provider admins hear about a damaged document once a day, not per request


def report_unreadable(served: _Served, exc: Exception, *, chunk: int | None = None,
                      sent: int | None = None) -> Unreadable:
    """Report an object that cannot be given out, and return the refusal for the caller to raise.

    The one path for damage (found before the answer or mid-stream), a missing object and
    a destroyed key: ``document.unreadable`` goes to the tenant's access log with the reason,
    the first chunk that failed and the plaintext bytes already sent; an error goes to the
    server log (ids and reason, never content); and every active provider admin is e-mailed
    the tenant's slug, the document id and a link (no title, no content), once a day per document.
    Whatever the caller had pending is rolled back; the report is committed on its own.
    """
    reason = type(exc).__name__
    detail = "the stored object is missing" if isinstance(exc, ObjectMissing) else str(exc)  # not its storage key
    where = f" at chunk {chunk}" if chunk is not None else ""
    with served.writing():
        current_app.logger.error("document %s (object %s) of tenant %s unreadable%s: %s: %s", served.document_id,
                                 served.object_id, served.tenant_id, where, reason, detail)
        db.session.rollback()
        if _first_alert(served):
            _alert_provider_admins(served, reason)
        served.record("document.unreadable", reason=reason, detail=detail, object=str(served.object_id),
                      chunk=chunk, sent=sent)  # commits the e-mails with the event
        if isinstance(exc, KeyUnavailable):
            error = Unreadable(_("This document can no longer be decrypted: its encryption key was destroyed."))
            error.status = 410
            return error
        return Unreadable(_("The stored copy of this document failed its integrity check, so it was not sent. "
                            "Your provider has been alerted; an earlier version may still open."))


def _first_alert(served: _Served) -> bool:
    """True when the document's access log has no unreadable event in the last ALERT_EVERY seconds.

    Thumbnails on the document list and retried downloads would otherwise mail every admin
    on every request. (Called before this request's own event is written.)
    """
    since = utcnow() - timedelta(seconds=ALERT_EVERY)
    return db.session.scalar(select(AuditEvent.id).where(
        AuditEvent.tenant_id == served.tenant_id, AuditEvent.action == "document.unreadable",
        AuditEvent.object_id == str(served.document_id), AuditEvent.occurred_at > since).limit(1)) is None


def _alert_provider_admins(served: _Served, reason: str) -> None:
    """Queue the e-mail of ``report_unreadable`` to every provider admin who can sign in (committed by the caller)."""
    # Built by hand: a stream has no request to build URLs from once its view returned.
    link = f"{current_app.config['BASE_URL'].rstrip('/')}/t/{served.tenant_slug}/documents/{served.document_id}"
    admins = db.session.scalars(select(User).where(User.provider_role == Role.PROVIDER_ADMIN.value,
                                                   User.is_active.is_(True), User.password_hash.is_not(None))
                                .order_by(User.id))
    for admin in admins:
        with force_locale(admin.locale or "en"):
            subject = _("%(tenant)s: a stored document could not be read", tenant=served.tenant_slug)
            body = _("The stored copy of document %(document)s in the workspace %(tenant)s could not be read "
                     "(%(reason)s), so it was refused rather than sent as good. The workspace's access log and "
                     "the server log say more.\n\nOpen the document:\n%(link)s\n",
                     document=served.document_id, tenant=served.tenant_slug, reason=reason, link=link)
        mail.send(admin.email, subject[:200], body)


# --- the documents list and its thumbnails ---------------------------------------------
# A list of thumbnails is one look at the list: ``browse`` records it once, with the page's filter and
# the titles it showed. The thumbnails in it, and the preview on a document's own page (recorded as
# ``document.viewed``), are fetched through URLs the page carries a mark in (``page_mark``): those
# fetches are part of a page already in the access log and are not recorded again. A preview opened
# any other way (a URL typed or shared, without the reader's mark for that version) is recorded as
# ``document.previewed``.

THUMBNAIL_MAX_AGE = 7 * 24 * 3600  # seconds a browser keeps a version's thumbnail before it asks again (a 304)


def browse(actor: User, tenant: Tenant, ip: str | None, *, category: str | None = None,
           period: date | None = None, tag: str | None = None, q: str | None = None,
           after: tuple[datetime, uuid.UUID] | None = None) -> DocumentPage:
    """One page of the documents list (``list_documents``), recorded once as ``documents.listed``."""
    page = list_documents(actor, category=category, period=period, tag=tag, q=q, after=after)
    shown = {"category": category, "period": period.strftime("%Y-%m") if period else None, "tag": tag, "q": q}
    audit.record("documents.listed", audit.Actor.of(actor), tenant_id=tenant.id, ip=ip,
                 data={"filter": {k: v for k, v in shown.items() if v}, "older": after is not None,
                       "count": len(page.documents), "names": [doc.title for doc in page.documents]})
    # The page shows the documents as they were read and recorded: an expiring commit would have them (and the
    # tenant) loaded again, all together or two statements a document (tests/test_query_budgets.py).
    commit_keeping_loaded()
    return page


def _marks() -> Signer:
    return Signer(current_app.secret_key, salt="documents.thumbnail-in-page", digest_method=hashlib.sha256)


def page_mark(user_id: uuid.UUID, document_id: uuid.UUID | str, version: int | str) -> str:
    """The mark of a thumbnail URL the portal rendered into a recorded page for ``user_id``.

    It names one person and one version's thumbnail (which never changes), so it lets that person
    fetch again only what the page showed them: it is worth no more than their browser's cache.
    """
    return _marks().get_signature(f"{user_id}:{document_id}:{version}").decode()


def thumbnail_query(actor: User, document_id: uuid.UUID | str, version: int | str | None = None) -> dict[str, str]:
    """The query of a thumbnail URL rendered into a page for ``actor``: the version it shows and their mark."""
    if version in (None, ""):
        # The page rendering the URL has loaded the document: the identity map answers, no query.
        doc = db.session.get(Document, parse_id(str(document_id)))
        if doc is None:
            return {}
        version = doc.current_version
    return {"version": str(version), "in_page": page_mark(actor.id, document_id, version)}


@dataclass(frozen=True)
class Thumbnail:
    """A version's thumbnail: its strong ETag (the SHA-256 of the PNG) and the PNG, or None for a 304."""

    etag: str
    png: bytes | None  # None: the caller holds exactly this thumbnail already; nothing was decrypted


def preview(actor: User, tenant: Tenant, document_id: str, *, version: int | str | None = None,
            ip: str | None = None, mark: str | None = None, held: Container[str] = ()) -> Thumbnail | None:
    """The PNG thumbnail we rendered of a version, or None while there is none; damage is reported like a download's.

    ``held`` are the ETags the caller has cached: when it holds this one, the answer is a 304 and the
    object is not read. ``mark`` is the ``in_page`` of the URL: with the reader's own mark for this
    numbered version the fetch belongs to a page already recorded and is not recorded again;
    otherwise it is ``document.previewed``.
    """
    doc, number, thumb = _thumbnail_of(actor, document_id, version)
    if thumb is None:
        return None
    png = None
    if thumb.sha256 not in held:
        png = b"".join(_read_whole(_Served.of(actor, tenant, doc, thumb, ip), thumb))  # a thumbnail is a few KB
    in_page = (version not in (None, "") and bool(mark)
               and _marks().verify_signature(f"{actor.id}:{doc.id}:{number}", str(mark)))
    if not in_page:
        _record("document.previewed", actor, tenant, doc, ip, version=number)
        db.session.commit()
    return Thumbnail(thumb.sha256, png)


def _thumbnail_of(actor: User, document_id: str,
                  version: int | str | None) -> tuple[Document, int, StoredObject | None]:
    """A document the actor may see (else 404), a version's number (the latest by default) and its thumbnail.

    One statement: every thumbnail of a list goes through here.
    """
    content, thumb = aliased(StoredObject), aliased(StoredObject)
    query = (_visible(actor).add_columns(DocumentVersion.number, thumb)
             .join(DocumentVersion, DocumentVersion.document_id == Document.id)
             .join(content, content.id == DocumentVersion.object_id)
             .outerjoin(thumb, thumb.id == content.thumbnail_id)
             .where(Document.id == parse_id(document_id))
             .options(lazyload(Document.versions)))  # not needed here: no second statement for them
    if version in (None, ""):
        query = query.where(DocumentVersion.number == Document.current_version)
    elif str(version).isdigit():
        query = query.where(DocumentVersion.number == int(version))
    else:
        raise NotFound()
    row = db.session.execute(query).first()
    if row is None:
        raise NotFound()
    return row[0], row[1], row[2]


def make_thumbnail(object_id: uuid.UUID | str) -> None:
    """Job: render a content object's thumbnail in the sandbox and store it sealed like any object.

    The object's row is claimed first (``FOR UPDATE SKIP LOCKED``, held to the commit): the same
    job run twice at once renders once, and the second finds the work done or in hand.
    """
    from portal.documents.previews import PreviewFailed, render_thumbnail

    obj = db.session.scalar(select(StoredObject).where(StoredObject.id == uuid.UUID(str(object_id)))
                            .with_for_update(skip_locked=True))
    if obj is None or obj.preview != "pending":
        return
    if obj.size > current_app.config["PREVIEW_MAX_BYTES"]:
        obj.preview = "none"
        return
    try:
        png = render_thumbnail(read_object(obj), obj.kind, max_input=current_app.config["PREVIEW_MAX_BYTES"])
    except PreviewFailed as exc:
        current_app.logger.warning("no preview for object %s: %s", obj.id, exc)
        obj.preview = "failed"
        return
    if png is None:
        obj.preview = "none"
        return
    stored = store_sealed(obj.tenant_id, [png])
    thumb = stored_row(stored, obj.tenant_id, "thumbnail", "png", "image/png")
    db.session.add(thumb)
    db.session.flush()
    obj.thumbnail_id, obj.preview = thumb.id, "ready"
