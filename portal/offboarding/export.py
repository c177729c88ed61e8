"""The client's data, handed back: everything it owns, in open formats, encrypted for it alone.

One 7z archive (an open format that 7-Zip, p7zip, Keka and Windows 11 open) encrypted
with AES-256 under a passphrase, names included (header encryption), holding:

- ``documents/<category>/<month>/<file>``: every version of every document, as uploaded;
- ``documents.csv``, ``requests.csv``, ``request_items.csv``, ``tasks.csv``,
  ``task_comments.csv`` (what the client sees: never the provider's internal notes),
  ``approvals.csv``, ``access_log.csv``, and all of them again in ``data.json``;
- ``README.txt``, saying what is where.

A job builds it (with progress, under a lease: a builder that died is taken over) and
stores it sealed like any object. The passphrase is made by the job, kept sealed with the
tenant's key, shown once to whoever asks for it first, and forgotten. The archive is deleted
after one complete download, or when it expires (``EXPORT_TTL_HOURS``); offboarding deletes
what is left. Later areas add their tables with ``register``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import current_app, has_app_context
from flask_babel import gettext as _
from sqlalchemy import select, text, update
from werkzeug.exceptions import NotFound

from portal import spreadsheet
from portal.documents.models import Document, DocumentRequest, DocumentVersion, RequestItem, StoredObject
from portal.documents.services import Download, read_object, store_sealed, stored_row, vault_storage
from portal.extensions import db
from portal.offboarding.models import TenantExport
from portal.work.models import Task, TaskComment
from tenants import audit
from tenants.audit import AuditEvent
from tenants.context import bound, current_scope
from tenants.lookups import parse_id
from tenants.models import Tenant, User, utcnow

LEASE = timedelta(minutes=10)
PROGRESS_EVERY = 10  # files between progress saves
_PASSPHRASE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # noqa: S105 - no 0/o, 1/l/i to mistake


class ExportError(ValueError):
    """A refusal the user can act on."""

    status = 409


@dataclass(frozen=True)
class Table:
    """One table of the archive: ``<name>.csv`` and a key of ``data.json``."""

    name: str
    header: list[str]
    rows: list[list[Any]]


Exporter = Callable[[], Table]
EXPORTERS: list[Exporter] = []


def register(exporter: Exporter) -> Exporter:
    """Add a table to every export (an area's data: the ledger's entries, payslips, …)."""
    EXPORTERS.append(exporter)
    return exporter


def new_passphrase() -> str:
    """Six groups of five letters and digits (about 145 bits), easy to read out and type."""
    chars = [secrets.choice(_PASSPHRASE_ALPHABET) for _ in range(30)]
    return "-".join("".join(chars[i:i + 5]) for i in range(0, 30, 5))


def _iso(value: date | datetime | None) -> str:
    return value.isoformat() if value else ""


def _names(ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = {i for i in ids if i}
    return dict(db.session.execute(select(User.id, User.name).where(User.id.in_(wanted))).all()) if wanted else {}


# --- the tables (the bound tenant's rows) -------------------------------------------------------------

@register
def _requests() -> Table:
    rows = list(db.session.scalars(select(DocumentRequest).order_by(DocumentRequest.created_at)))
    names = _names(r.created_by_id for r in rows)
    return Table("requests", ["request_id", "title", "note", "created_at", "created_by"],
                 [[r.id, r.title, r.note or "", _iso(r.created_at), names.get(r.created_by_id, "")] for r in rows])


@register
def _request_items() -> Table:
    rows = list(db.session.scalars(select(RequestItem).order_by(RequestItem.request_id, RequestItem.position)))
    return Table("request_items", ["item_id", "request_id", "description", "category", "due_date", "fulfilled_at",
                                   "document_id"],
                 [[i.id, i.request_id, i.description, i.category, _iso(i.due_date), _iso(i.fulfilled_at),
                   i.document_id or ""] for i in rows])


@register
def _tasks() -> Table:
    rows = list(db.session.scalars(select(Task).order_by(Task.created_at)))
    return Table("tasks", ["task_id", "title", "description", "service_line", "state", "priority", "due_date",
                           "created_at", "done_at", "source"],
                 [[t.id, t.title, t.description or "", t.service_line.key, t.state, t.priority, _iso(t.due_date),
                   _iso(t.created_at), _iso(t.done_at), t.source] for t in rows])


@register
def _comments() -> Table:
    # What the client sees: questions, answers and comments; never the provider's internal notes.
    rows = list(db.session.scalars(select(TaskComment).where(TaskComment.internal.is_(False))
                                   .order_by(TaskComment.created_at)))
    names = _names(c.author_id for c in rows)
    return Table("task_comments", ["comment_id", "task_id", "kind", "author", "created_at", "body"],
                 [[c.id, c.task_id, c.kind, names.get(c.author_id, ""), _iso(c.created_at), c.body] for c in rows])


@register
def _approvals() -> Table:
    rows = list(db.session.scalars(select(Task).where(Task.approved_at.is_not(None)).order_by(Task.approved_at)))
    names = _names(t.approved_by_id for t in rows)
    return Table("approvals", ["task_id", "task_title", "document_id", "approved_sha256", "approved_by",
                               "approved_at"],
                 [[t.id, t.title, t.product_id or "", t.approved_sha256 or "", names.get(t.approved_by_id, ""),
                   _iso(t.approved_at)] for t in rows])


@register
def _access_log() -> Table:
    rows = list(db.session.scalars(select(AuditEvent).where(AuditEvent.internal.is_(False))
                                   .order_by(AuditEvent.seq)))
    return Table("access_log", ["seq", "occurred_at", "side", "who", "action", "object_type", "object_id",
                                "ip_address", "details"],
                 [[e.seq, _iso(e.occurred_at), e.actor_side, e.who or "", e.action, e.object_type or "",
                   e.object_id or "", e.address or "", json.dumps(e.details, ensure_ascii=False, sort_keys=True)]
                  for e in rows])


# --- the archive ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _File:
    path: str
    obj: StoredObject


class _SizedStream(io.BufferedIOBase):
    """A document's decrypted chunks as a read-once file of known size, for ``py7zr.writef``.

    py7zr measures a file by seeking to its end and back; that is all the seeking allowed.
    """

    def __init__(self, chunks: Iterator[bytes], size: int) -> None:
        self._chunks, self._size, self._pos = chunks, size, 0
        self._buf = b""
        self._probe: int | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos if self._probe is None else self._probe

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {io.SEEK_SET: offset, io.SEEK_CUR: self.tell() + offset, io.SEEK_END: self._size + offset}[whence]
        if target == self._pos:
            self._probe = None
        elif target == self._size:
            self._probe = target
        else:
            raise io.UnsupportedOperation("this stream is read once, front to back")
        return target

    def read(self, n: int | None = -1) -> bytes:
        if self._probe is not None:
            raise io.UnsupportedOperation("seek back before reading")
        while n is None or n < 0 or len(self._buf) < n:
            piece = next(self._chunks, None)
            if piece is None:
                break
            self._buf += piece
        cut = len(self._buf) if n is None or n < 0 else n
        out, self._buf = self._buf[:cut], self._buf[cut:]
        self._pos += len(out)
        return out

    read1 = read


def _document_files() -> list[_File]:
    taken: set[str] = set()
    files = []
    query = (select(DocumentVersion).join(Document)
             .order_by(Document.category, Document.created_at, Document.id, DocumentVersion.number))
    for version in db.session.scalars(query):
        doc = version.document
        folder = f"documents/{doc.category}/{doc.period.strftime('%Y-%m') if doc.period else 'undated'}"
        name = version.filename if doc.current_version == 1 else f"v{version.number} {version.filename}"
        files.append(_File(_unique(f"{folder}/{name}", taken), version.object))
    return files


def _unique(name: str, taken: set[str]) -> str:
    stem, dot, ext = name.rpartition(".")
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem} ({n}).{ext}" if dot else f"{name} ({n})"
    taken.add(candidate)
    return candidate


def _documents_table(files: list[_File]) -> Table:
    versions = {v.object_id: v for v in db.session.scalars(select(DocumentVersion))}
    rows = []
    for f in files:
        version = versions[f.obj.id]
        doc = version.document
        rows.append([f.path, doc.id, doc.title, doc.category, doc.period.strftime("%Y-%m") if doc.period else "",
                     ", ".join(doc.tags), version.number, f.obj.sha256, f.obj.size, _iso(version.created_at)])
    return Table("documents", ["path", "document_id", "title", "category", "period", "tags", "version", "sha256",
                               "bytes", "uploaded_at"], rows)


def _csv(table: Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(table.header)
    for row in table.rows:
        writer.writerow(spreadsheet.row([str(v) for v in row]))  # a cell like =HYPERLINK(...) stays text
    return ("\ufeff" + out.getvalue()).encode()  # the BOM makes spreadsheets read UTF-8 (Vietnamese)


README = """Your data from the back-office portal
=====================================

documents/            every version of every document, as it was uploaded
                      (folders: category, then month; "v2 name" is an earlier version)
documents.csv         the documents: title, category, month, tags, version, SHA-256, size
requests.csv          the provider's requests for documents
request_items.csv     each document asked for, when it was due and which document answered it
tasks.csv             the work done for you
task_comments.csv     questions, answers and comments on that work
approvals.csv         what you approved, with the SHA-256 of exactly the version you approved
access_log.csv        who did what in your workspace, as your access log showed it
data.json             all of the tables above in one JSON file
{extra}
The CSV files are UTF-8 with a byte-order mark; cells that a spreadsheet would run as a
formula start with a quote ('), so they stay text. Check a document against its SHA-256 with
`sha256sum FILE` (Linux), `shasum -a 256 FILE` (macOS) or `certutil -hashfile FILE SHA256` (Windows).
"""


_DESCRIBED = {"documents", "requests", "request_items", "tasks", "task_comments", "approvals", "access_log"}


def write_archive(path: Path, passphrase: str, progress: Callable[[int, int], None] | None = None) -> int:
    """Write the bound tenant's archive to ``path`` (7z, AES-256, names encrypted); returns how many files."""
    import py7zr

    files = _document_files()
    tables = [_documents_table(files)] + [exporter() for exporter in EXPORTERS]
    # No compression: documents are mostly PDFs and photos, compressed already; AES-256 over the copy.
    filters = [{"id": py7zr.FILTER_COPY}, {"id": py7zr.FILTER_CRYPTO_AES256_SHA256}]
    with py7zr.SevenZipFile(path, "w", password=passphrase, header_encryption=True, filters=filters) as archive:
        for done, f in enumerate(files, 1):
            archive.writef(_SizedStream(read_object(f.obj), f.obj.size), f.path)
            if progress is not None:
                progress(done, len(files))
        for table in tables:
            archive.writestr(_csv(table), f"{table.name}.csv")
        data = {t.name: [dict(zip(t.header, map(str, row), strict=True)) for row in t.rows] for t in tables}
        archive.writestr(json.dumps(data, ensure_ascii=False, indent=1).encode(), "data.json")
        extra = "".join(f"{t.name}.csv\n" for t in tables if t.name not in _DESCRIBED)  # later areas' tables
        archive.writestr(README.format(extra=extra).encode(), "README.txt")
    return len(files)


# --- exports kept for the client -----------------------------------------------------------------------

def request_export(actor: User, tenant: Tenant, ip: str | None = None) -> TenantExport:
    """Queue an export of the bound tenant (one at a time); the job builds it."""
    from workers import enqueue

    busy = db.session.scalar(select(TenantExport.id).where(TenantExport.state.in_(("queued", "building")))
                             .with_for_update())
    if busy is not None:
        raise ExportError(_("An export is being prepared already; wait for it to finish."))
    export = TenantExport(tenant_id=tenant.id, requested_by_id=actor.id)
    db.session.add(export)
    db.session.flush()
    audit.record("export.requested", audit.Actor.of(actor), tenant_id=tenant.id, ip=ip, object_type="export",
                 object_id=export.id)
    enqueue("offboarding.export", export.id, tenant_id=tenant.id)
    db.session.commit()
    return export


def exports() -> list[TenantExport]:
    """The bound tenant's exports, newest first."""
    return list(db.session.scalars(select(TenantExport).order_by(TenantExport.created_at.desc()).limit(20)))


def get_export(export_id: str, *, lock: bool = False) -> TenantExport:
    """An export of the bound tenant, or 404 (the same for another tenant's)."""
    export = db.session.get(TenantExport, parse_id(export_id), with_for_update=lock, populate_existing=lock)
    if export is None:
        raise NotFound()
    return export


_CLAIM = text("update tenant_exports set state = 'building', lease_until = now() + make_interval(secs => :lease) "
              "where id = :id and (state = 'queued' or (state = 'building' and lease_until < now())) returning id")


def build_export(export_id: uuid.UUID | str) -> bool:
    """Job: build a queued export (or take over one whose builder died); False when there was nothing to do."""
    export_id = uuid.UUID(str(export_id))
    if db.session.execute(_CLAIM, {"id": export_id, "lease": LEASE.total_seconds()}).first() is None:
        db.session.rollback()
        return False
    db.session.commit()
    export = get_export(str(export_id))
    tenant = db.session.get(Tenant, export.tenant_id)

    def progress(done: int, total: int) -> None:
        if done % PROGRESS_EVERY and done != total:
            return
        db.session.execute(update(TenantExport).where(TenantExport.id == export_id)
                           .values(files_done=done, files_total=total, lease_until=utcnow() + LEASE))
        db.session.commit()

    passphrase = new_passphrase()
    try:
        with tempfile.TemporaryDirectory(prefix="portal-export-") as folder:
            path = Path(folder) / "export.7z"  # ciphertext only: the archive is encrypted as it is written
            count = write_archive(path, passphrase, progress)
            with path.open("rb") as handle:
                stored = store_sealed(tenant.id, iter(lambda: handle.read(1 << 20), b""))
    except Exception as exc:
        db.session.rollback()
        db.session.execute(update(TenantExport).where(TenantExport.id == export_id)
                           .values(state="failed", error=f"{type(exc).__name__}", lease_until=None))
        db.session.commit()
        raise
    db.session.add(stored_row(stored, tenant.id, "export", "7z", "application/x-7z-compressed"))
    ttl = timedelta(hours=int(current_app.config.get("EXPORT_TTL_HOURS", 72)))
    now = utcnow()
    export = get_export(str(export_id), lock=True)
    export.state, export.object_id, export.size = "ready", stored.object_id, stored.size
    export.files_done = export.files_total = count
    export.passphrase, export.ready_at, export.expires_at, export.lease_until = passphrase, now, now + ttl, None
    audit.record("export.ready", audit.SYSTEM, tenant_id=tenant.id, object_type="export", object_id=export.id,
                 data={"files": count, "bytes": stored.size})
    db.session.commit()
    return True


def reveal_passphrase(actor: User, tenant: Tenant, export_id: str, ip: str | None = None) -> str:
    """The archive's passphrase, once: it is forgotten as it is shown (audited)."""
    export = get_export(export_id, lock=True)
    if export.state != "ready":
        raise ExportError(_("This export is not ready."))
    if export.passphrase is None:
        raise ExportError(_("The passphrase of this export was shown already and is not kept. Prepare a new export "
                            "if it was lost."))
    passphrase = export.passphrase
    export.passphrase, export.passphrase_shown_at = None, utcnow()
    audit.record("export.passphrase_shown", audit.Actor.of(actor), tenant_id=tenant.id, ip=ip,
                 object_type="export", object_id=export.id)
    db.session.commit()
    return passphrase


def download_export(actor: User, tenant: Tenant, export_id: str, ip: str | None = None) -> Download:
    """Stream a ready export; once the whole archive has been sent, it is deleted from the server.

    The stream may be read after the request's contexts are gone (as a WSGI server reads a
    response body): it brings its own app context and scope to record the fetch.
    """
    export = get_export(export_id)
    if export.state != "ready" or export.object_id is None:
        raise ExportError(_("This export is not available: it was downloaded already, expired, or is not ready."))
    obj = db.session.get(StoredObject, export.object_id)
    chunks = read_object(obj)
    stamp = (export.ready_at or utcnow()).strftime("%Y-%m-%d")

    app, scope, export_id_ = current_app._get_current_object(), current_scope(), export.id  # type: ignore[attr-defined]

    def stream() -> Iterator[bytes]:
        # The last chunk is held back until the fetch is recorded: a client that has the whole archive
        # always finds it marked downloaded (and deleted) when it looks again.
        last = None
        for chunk in chunks:
            if last is not None:
                yield last
            last = chunk
        with nullcontext() if has_app_context() else app.app_context(), bound(scope):
            _fetched(actor, tenant, export_id_, ip)
        if last is not None:
            yield last

    return Download(f"{tenant.slug}-export-{stamp}.7z", "application/x-7z-compressed", obj.size, stream())


def _fetched(actor: User | None, tenant: Tenant, export_id: uuid.UUID, ip: str | None) -> None:
    export = get_export(str(export_id), lock=True)
    if export.state == "ready":
        _discard(export, "fetched")
        export.fetched_at = utcnow()
        audit.record("export.downloaded", audit.Actor.of(actor), tenant_id=tenant.id, ip=ip,
                     object_type="export", object_id=export.id)
    db.session.commit()


def _discard(export: TenantExport, state: str) -> None:
    obj = db.session.get(StoredObject, export.object_id) if export.object_id else None
    export.state, export.object_id, export.passphrase = state, None, None
    if obj is not None:
        vault_storage().delete(obj.storage_key)
        db.session.delete(obj)


def purge_expired(now: datetime | None = None) -> int:
    """Job: delete the exports, of every tenant, that were not fetched in time; returns how many."""
    now = now or utcnow()
    count = 0
    with bound(audit.all_tenants_scope()):  # the system's own sweep over every tenant
        expired = db.session.scalars(select(TenantExport).where(TenantExport.state == "ready",
                                                                TenantExport.expires_at < now).with_for_update())
        for export in expired:
            _discard(export, "expired")
            audit.record("export.expired", audit.SYSTEM, tenant_id=export.tenant_id, object_type="export",
                         object_id=export.id)
            count += 1
        db.session.commit()
    return count


def export_to_file(tenant: Tenant, out: Path, actor: User | None = None) -> tuple[int, str]:
    """Write the archive straight to ``out`` (mode 0600), for the command line; returns (files, passphrase)."""
    passphrase = new_passphrase()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    count = write_archive(out, passphrase)
    os.chmod(out, 0o600)
    audit.record("tenant.exported", audit.Actor.of(actor), tenant_id=tenant.id, object_type="tenant",
                 object_id=tenant.id, data={"files": count})
    db.session.commit()
    return count, passphrase
