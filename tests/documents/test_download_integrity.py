"""Downloads are never given out as good unless every chunk of the stored object authenticated.

Seven ways to damage a 3.5 MiB object (four 1 MiB chunks, the last one half full) behind
an authentic chunk 0, on the page download and on the API's content endpoint. Up to
DOWNLOAD_VERIFY_MAX_BYTES (16 MiB by default) the object is checked whole: 502 before any
byte. Above it the object streams, so those tests lower the limit and serve the app with a
real HTTP server on loopback: the client must see a short body or an error, never a
complete answer. Either way the access log says ``document.unreadable``, not
``document.downloaded``, the server log has an error and the provider admins get an e-mail.
"""

from __future__ import annotations

import http.client
import io
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from portal import mail
from portal.documents import services
from portal.documents.models import Document, StoredObject
from portal.extensions import db
from portal.mail import MailMessage
from tenants.audit import AuditEvent
from tenants.context import Scope, bound
from tenants.models import Tenant, User
from tenants.policy import Role
from tenants.sealed import CHUNK_SIZE, TAG_SIZE, read_header
from tests.api.util import bearer, issue_token
from tests.documents import samples
from tests.factories import login

SIZE = 3 * CHUNK_SIZE + CHUNK_SIZE // 2  # chunks 0, 1, 2 full; chunk 3 half full
FULL = CHUNK_SIZE + TAG_SIZE  # a full chunk as stored
TITLE = "integrity.pdf"


# --- the seven manipulations: (stored header, stored chunks) -> stored bytes; and the chunk that fails -------

def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


Damage = Callable[[bytes, list[bytes]], bytes]

MANIPULATIONS: dict[str, tuple[Damage, int]] = {
    "bit flipped in chunk 2": (lambda h, c: h + c[0] + c[1] + _flip(c[2], 1000) + c[3], 2),
    "tag of the last chunk flipped": (lambda h, c: h + c[0] + c[1] + c[2] + _flip(c[3], len(c[3]) - 1), 3),
    "last chunk removed": (lambda h, c: h + c[0] + c[1] + c[2], 2),
    "last 100 bytes cut": (lambda h, c: (h + b"".join(c))[:-100], 3),
    "middle chunk dropped": (lambda h, c: h + c[0] + c[2] + c[3], 1),
    "two chunks swapped": (lambda h, c: h + c[0] + c[2] + c[1] + c[3], 1),
    "bytes appended": (lambda h, c: h + b"".join(c) + os.urandom(100), 3),
}
ENDPOINTS = ("page", "api")


@dataclass(frozen=True)
class Stored:
    """A document uploaded through the services, and where its sealed object lies on disk."""

    doc_id: str
    path: Path
    body: bytes

    def damage(self, how: Damage) -> None:
        blob = self.path.read_bytes()
        head = len(read_header(io.BytesIO(blob)).raw)
        chunks = [blob[i:i + FULL] for i in range(head, len(blob), FULL)]
        assert len(chunks) == -(-len(self.body) // CHUNK_SIZE)
        self.path.write_bytes(how(blob[:head], chunks))


def _store(app, world, size: int = SIZE, body: bytes | None = None, category: str = "invoice") -> Stored:
    """Upload a file of ``size`` bytes as tenant A's client member, through ``services.upload``."""
    if body is None:
        head = samples.pdf(int.from_bytes(os.urandom(2), "big"))
        body = head + os.urandom(size - len(head))  # random: never a duplicate of another test's file
    with app.app_context():
        user, tenant = db.session.get(User, world["a_client_member"].id), db.session.get(Tenant, world.a.id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({tenant.id}), role=Role.CLIENT_MEMBER)):
            target = services.upload_target(user, category=category)
            result = services.upload(user, tenant, [body], filename=TITLE, target=target)
            assert result.status == "stored", result.message
            key = result.document.latest.object.storage_key
            return Stored(str(result.document.id), Path(app.config["STORAGE_DIR"]) / key, body)


def _path(world, stored: Stored, endpoint: str) -> str:
    if endpoint == "page":
        return f"/t/{world.a.slug}/documents/{stored.doc_id}/download"
    return f"/api/v1/tenants/{world.a.slug}/documents/{stored.doc_id}/content"


def _details(event: AuditEvent) -> dict | None:
    """The event's details, opened; None when the tenant's key that sealed them was destroyed."""
    from tenants.keyring import KeyUnavailable

    try:
        return event.details
    except KeyUnavailable:
        return None


def _events(app, world, stored: Stored) -> list[tuple[str, dict]]:
    """The access-log events about the document, oldest first."""
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.object_id == stored.doc_id)
                                  .order_by(AuditEvent.seq)).all()
        return [(row.action, _details(row)) for row in rows]


def _alerts(app, world, stored: Stored) -> list[tuple[str, str]]:
    """(subject, body) of the e-mails queued to this world's provider admin about the document."""
    with app.app_context():
        rows = db.session.scalars(select(MailMessage).where(MailMessage.to_addr == world["provider_admin"].email)
                                  .order_by(MailMessage.created_at)).all()
        emails = [mail._compose(m) for m in rows]  # as delivery will write them (subject and body are sealed)
        return [(e["Subject"], e.get_content()) for e in emails if stored.doc_id in e.get_content()]


def _assert_reported(app, world, stored: Stored, server_log: list[str], *, chunk: int | None,
                     reason: str = "IntegrityError", sent: int | None = None) -> None:
    """Unreadable in the access log (never downloaded), an error in the server log, one e-mail to the provider."""
    events = _events(app, world, stored)
    actions = [action for action, _ in events]
    assert "document.downloaded" not in actions, events
    assert actions.count("document.unreadable") == 1, events
    details = next(d for action, d in events if action == "document.unreadable")
    if reason == "KeyUnavailable":
        # The tenant's key is gone, so nothing can be sealed with it: the event is kept without details
        # (never with them in clear).
        assert details == {}, details
    else:
        assert details["reason"] == reason and details.get("chunk") == chunk and details.get("sent") == sent, details

    errors = [line for line in server_log if stored.doc_id in line]
    assert len(errors) == 1 and "unreadable" in errors[0] and reason in errors[0], errors
    assert "integrity." not in errors[0]  # ids and the reason, never the document's name (.pdf, or .png)

    alerts = _alerts(app, world, stored)
    assert len(alerts) == 1, alerts
    subject, body = alerts[0]
    assert world.a.slug in subject and world.a.slug in body
    assert f"http://localhost/t/{world.a.slug}/documents/{stored.doc_id}" in body  # BASE_URL in the tests
    assert "integrity." not in subject + body


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def server_log() -> Iterator[list[str]]:
    """The error lines the portal logs meanwhile (its logger does not propagate to pytest's caplog)."""
    handler, logger = _Lines(), logging.getLogger("portal")
    # Alembic's fileConfig, run when the test database was migrated, may have switched the logger off.
    disabled, logger.disabled = logger.disabled, False
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)
    logger.disabled = disabled


@pytest.fixture
def member(app, world):
    client = app.test_client()
    login(client, world["a_client_member"])
    return client


@pytest.fixture
def token(app, world) -> str:
    return issue_token(app, world["a_client_member"], world.a, "read")


def _auth(endpoint: str, token: str) -> dict[str, str]:
    return bearer(token) if endpoint == "api" else {}


# --- objects up to the limit: checked whole, refused before the first byte -----------------------------------

@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("manipulation", MANIPULATIONS)
def test_damage_after_chunk_0_is_refused_before_any_byte_is_sent(app, world, member, token, server_log,
                                                                 manipulation: str, endpoint: str) -> None:
    assert app.config["DOWNLOAD_VERIFY_MAX_BYTES"] >= SIZE
    stored = _store(app, world)
    how, failing = MANIPULATIONS[manipulation]
    stored.damage(how)
    server_log.clear()

    r = member.get(_path(world, stored, endpoint), headers=_auth(endpoint, token))

    assert r.status_code == 502, r.status_code
    assert "Content-Disposition" not in r.headers and r.mimetype != "application/pdf"
    assert b"%PDF" not in r.data and stored.body[-4096:] not in r.data and len(r.data) < 64 * 1024
    assert "integrity check" in r.get_data(as_text=True)
    if endpoint == "api":
        assert r.mimetype == "application/problem+json" and r.json["status"] == 502
    _assert_reported(app, world, stored, server_log, chunk=failing)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_undamaged_object_under_the_limit_comes_back_whole_and_is_logged_first(app, world, member, token,
                                                                                   endpoint: str) -> None:
    stored = _store(app, world)
    r = member.get(_path(world, stored, endpoint), headers=_auth(endpoint, token))
    assert r.status_code == 200 and r.data == stored.body and int(r.headers["Content-Length"]) == SIZE
    assert [a for a, _ in _events(app, world, stored)] == ["document.uploaded", "document.downloaded"]


# --- every unreadable object is reported the same way ---------------------------------------------------------

@pytest.mark.parametrize(("what", "status", "reason", "chunk"), [
    ("header flipped", 502, "IntegrityError", 0),
    ("object missing", 502, "ObjectMissing", None),
    ("key destroyed", 410, "KeyUnavailable", None),
])
def test_chunk_0_a_missing_object_and_a_destroyed_key_are_reported_alike(app, world, member, server_log, what: str,
                                                                          status: int, reason: str,
                                                                          chunk: int | None) -> None:
    stored = _store(app, world)
    if what == "header flipped":
        stored.path.write_bytes(_flip(stored.path.read_bytes(), 60))
    elif what == "object missing":
        stored.path.unlink()
    else:
        with app.app_context():
            services.vault_keyring().destroy_tenant(world.a.id)
    server_log.clear()
    r = member.get(_path(world, stored, "page"))
    assert r.status_code == status and b"%PDF" not in r.data
    _assert_reported(app, world, stored, server_log, chunk=chunk, reason=reason)


def test_a_damaged_thumbnail_is_reported_like_a_download(app, world, member, server_log) -> None:
    stored = _store(app, world, body=samples.png(7, size=(300, 200)), category="receipt")
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        obj = db.session.get(Document, stored.doc_id).latest.object
        services.make_thumbnail(obj.id)
        db.session.commit()
        thumb = db.session.get(StoredObject, obj.thumbnail_id)
        path = Path(app.config["STORAGE_DIR"]) / thumb.storage_key
    path.write_bytes(_flip(path.read_bytes(), path.stat().st_size - 1))  # the tag of its only chunk
    server_log.clear()
    r = member.get(f"/t/{world.a.slug}/documents/{stored.doc_id}/preview.png")
    assert r.status_code == 502 and r.mimetype != "image/png"
    _assert_reported(app, world, stored, server_log, chunk=0)


def test_the_provider_hears_of_a_damaged_object_once_however_often_it_is_asked_for(app, world, member) -> None:
    stored = _store(app, world)
    stored.damage(MANIPULATIONS["bit flipped in chunk 2"][0])
    for _ in range(3):
        assert member.get(_path(world, stored, "page")).status_code == 502
    assert [a for a, _ in _events(app, world, stored)].count("document.unreadable") == 3
    assert len(_alerts(app, world, stored)) == 1


# --- larger objects stream: a real HTTP server, a real client ------------------------------------------------

@pytest.fixture
def server(app, monkeypatch) -> Iterator[tuple[str, int]]:
    """The app on a real HTTP server on loopback, with the verify limit at one chunk so 3.5 MiB streams."""
    monkeypatch.setitem(app.config, "DOWNLOAD_VERIFY_MAX_BYTES", CHUNK_SIZE)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name="integrity-http", daemon=True)
    thread.start()
    yield "127.0.0.1", httpd.server_port
    httpd.shutdown()
    thread.join(timeout=10)


def _headers(endpoint: str, member, token: str) -> dict[str, str]:
    if endpoint == "api":
        return bearer(token)
    cookie = member.get_cookie("portal_session")
    return {"Cookie": f"portal_session={cookie.value}"}


@dataclass
class Answer:
    status: int
    length: int | None  # the declared Content-Length
    body: bytes
    complete: bool  # the body ended cleanly where it said it would


def _fetch(address: tuple[str, int], path: str, headers: dict[str, str]) -> Answer:
    conn = http.client.HTTPConnection(*address, timeout=30)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        length = response.getheader("Content-Length")
        try:
            body, complete = response.read(), True
        except http.client.IncompleteRead as exc:
            body, complete = exc.partial, False
        except ConnectionError:
            body, complete = b"", False
        return Answer(response.status, int(length) if length is not None else None, body, complete)
    finally:
        conn.close()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("manipulation", MANIPULATIONS)
def test_a_streamed_object_damaged_after_chunk_0_is_cut_off_never_completed(app, world, member, token, server,
                                                                            server_log, manipulation: str,
                                                                            endpoint: str) -> None:
    stored = _store(app, world)
    assert app.config["DOWNLOAD_VERIFY_MAX_BYTES"] < SIZE
    how, failing = MANIPULATIONS[manipulation]
    stored.damage(how)
    server_log.clear()

    answer = _fetch(server, _path(world, stored, endpoint), _headers(endpoint, member, token))

    # Never the whole file, cleanly: a 200 is cut short of its Content-Length; damage in chunk 1 is found
    # before the first byte, and the server answers an error instead.
    assert not (answer.status == 200 and answer.complete), answer.status
    if answer.status == 200:
        assert answer.length == SIZE and len(answer.body) < SIZE
    else:
        assert answer.status >= 500 and b"%PDF" not in answer.body
    # One chunk is held back (chunk n-1 leaves once chunk n authenticated), so what arrived is authentic,
    # whole chunks, and the access log says how much.
    sent = (failing - 1) * CHUNK_SIZE
    _assert_reported(app, world, stored, server_log, chunk=failing, sent=sent)
    if answer.status == 200:
        assert answer.body == stored.body[:sent]


def test_an_undamaged_streamed_object_arrives_whole_and_is_logged_once_its_last_chunk_authenticated(
        app, world, member, token, server) -> None:
    size = 24 * CHUNK_SIZE  # more than loopback buffers hold, so the server waits for the client mid-way
    stored = _store(app, world, size)
    conn = http.client.HTTPConnection(*server, timeout=30)
    conn.connect()
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    conn.request("GET", _path(world, stored, "api"), headers=bearer(token))
    response = conn.getresponse()
    assert response.status == 200 and int(response.getheader("Content-Length")) == size
    first = response.read(CHUNK_SIZE)
    assert "document.downloaded" not in [a for a, _ in _events(app, world, stored)]  # not whole yet
    body = first + response.read()
    conn.close()
    assert body == stored.body
    downloads = [d for a, d in _events(app, world, stored) if a == "document.downloaded"]
    assert downloads == [{"name": TITLE, "version": 1}]
    assert "document.unreadable" not in [a for a, _ in _events(app, world, stored)]


def test_a_client_that_leaves_a_stream_part_way_is_still_in_the_access_log(app, world, member, token,
                                                                            server) -> None:
    size = 24 * CHUNK_SIZE
    stored = _store(app, world, size)
    conn = http.client.HTTPConnection(*server, timeout=30)
    conn.request("GET", _path(world, stored, "api"), headers=bearer(token))
    sock = conn.sock  # the connection lets go of it once the answer says "Connection: close"
    response = conn.getresponse()
    assert response.read(CHUNK_SIZE) == stored.body[:CHUNK_SIZE]
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
    response.close()
    sock.close()
    deadline = time.monotonic() + 10
    while not (downloads := [d for a, d in _events(app, world, stored) if a == "document.downloaded"]):
        assert time.monotonic() < deadline, "the interrupted download never reached the access log"
        time.sleep(0.05)
    assert len(downloads) == 1 and downloads[0]["complete"] is False
    assert CHUNK_SIZE <= downloads[0]["sent"] < size and downloads[0]["sent"] % CHUNK_SIZE == 0
