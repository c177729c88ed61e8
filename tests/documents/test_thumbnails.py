"""The documents list is one look, not one per thumbnail; thumbnails are cached and never decrypted twice.

A list of N thumbnails writes one ``documents.listed`` row to the client's access log, and the
thumbnails the page carries write none. A thumbnail is answered with a strong ETag and private
caching; a browser holding it gets a 304 without the object being read. A preview opened any other
way (a URL typed or passed on) is still recorded, and another tenant's document has no thumbnail here.
"""

from __future__ import annotations

import html
import io
import re

import pytest
from sqlalchemy import select

from portal.extensions import db
from tenants.audit import AuditEvent
from tests.api.util import in_tenant
from tests.documents import samples
from tests.factories import csrf_token, login

THUMB = re.compile(r'<img class="thumb"[^>]* src="([^"]+)"')


def _upload_images(client, slug: str, count: int, seed: int) -> list[str]:
    """Upload ``count`` distinct JPEGs as receipts; their documents' URLs."""
    token = csrf_token(client, f"/t/{slug}/documents")
    r = client.post(f"/t/{slug}/documents/upload", headers={"Accept": "application/json"},
                    content_type="multipart/form-data",
                    data={"csrf_token": token, "category": "receipt",
                          "file": [(io.BytesIO(samples.jpeg(seed + 40 * i, size=(200, 150))), f"receipt {i}.jpg")
                                   for i in range(count)]})
    assert r.status_code == 200, r.data
    return [result["url"] for result in r.json["results"]]


def _actions(app, tenant) -> list[str]:
    with in_tenant(app, tenant):
        return list(db.session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant.id)
                                       .order_by(AuditEvent.seq)))


@pytest.fixture
def member(app, world):
    client = app.test_client()
    login(client, world["a_client_member"])
    return client


@pytest.fixture
def listed(app, world, member, run_jobs) -> tuple[list[str], list[str]]:
    """Five receipts with rendered thumbnails; (their document URLs, the thumbnail URLs the list page shows)."""
    docs = _upload_images(member, world.a.slug, 5, seed=310)
    run_jobs()  # the worker renders the thumbnails
    page = member.get(f"/t/{world.a.slug}/documents").get_data(as_text=True)
    thumbs = [html.unescape(src) for src in THUMB.findall(page)]
    assert len(thumbs) == 5
    return docs, thumbs


def test_a_list_of_thumbnails_is_one_listing_in_the_access_log(app, world, member, listed):
    before = _actions(app, world.a)
    page = member.get(f"/t/{world.a.slug}/documents").get_data(as_text=True)
    for src in [html.unescape(src) for src in THUMB.findall(page)]:
        r = member.get(src)
        assert r.status_code == 200 and r.data.startswith(b"\x89PNG")
    # The page and its five thumbnails: one row, the listing; none per thumbnail.
    assert _actions(app, world.a)[len(before):] == ["documents.listed"]

    admin = app.test_client()  # and the client reads it as one sentence
    login(admin, world["a_client_admin"])
    log = admin.get(f"/t/{world.a.slug}/access-log").get_data(as_text=True)
    assert "looked at the list of documents (5 documents shown)" in log
    assert "looked at a document&#39;s preview" not in log


def test_a_filtered_listing_is_recorded_with_its_filter(app, world, member, listed):
    member.get(f"/t/{world.a.slug}/documents", query_string={"category": "receipt", "q": "receipt 3"})
    with in_tenant(app, world.a):
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "documents.listed")
                                   .order_by(AuditEvent.seq.desc())).first()
        assert event.details["count"] == 1 and event.details["names"] == ["receipt 3.jpg"]
        assert event.details["filter"] == {"category": "receipt", "q": "receipt 3"}


def test_a_thumbnail_has_a_strong_etag_private_caching_and_a_304(app, world, member, listed):
    _, thumbs = listed
    r = member.get(thumbs[0])
    etag, weak = r.get_etag()
    assert etag and not weak and r.headers["ETag"].startswith('"')
    cache = r.headers["Cache-Control"]
    assert "private" in cache and "max-age=" in cache and "no-store" not in cache and "public" not in cache

    again = member.get(thumbs[0], headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    assert again.get_etag() == (etag, False) and "private" in again.headers["Cache-Control"]
    # Another version's (or document's) thumbnail is not this one: a stale tag gets the image.
    other = member.get(thumbs[1], headers={"If-None-Match": r.headers["ETag"]})
    assert other.status_code == 200 and other.data.startswith(b"\x89PNG") and other.get_etag()[0] != etag


def test_a_304_reads_nothing_from_storage(app, world, member, listed, monkeypatch):
    from portal.documents import services

    _, thumbs = listed
    etag = member.get(thumbs[0]).headers["ETag"]
    reads = []
    real = services._read_whole
    monkeypatch.setattr(services, "_read_whole", lambda *a, **k: reads.append(1) or real(*a, **k))
    assert member.get(thumbs[0], headers={"If-None-Match": etag}).status_code == 304
    assert reads == []  # not decrypted: the browser already holds exactly this image
    assert member.get(thumbs[0]).status_code == 200 and reads == [1]


def test_the_latest_thumbnail_without_a_version_is_revalidated(app, world, member, listed):
    docs, _ = listed
    r = member.get(docs[0] + "/preview.png")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "private, no-cache"
    assert member.get(docs[0] + "/preview.png", headers={"If-None-Match": r.headers["ETag"]}).status_code == 304


def test_a_preview_opened_outside_a_page_is_recorded(app, world, member, listed):
    docs, thumbs = listed
    before = _actions(app, world.a).count("document.previewed")
    member.get(docs[0] + "/preview.png")  # typed or shared: no page of the portal showed it
    member.get(re.sub(r"in_page=[^&]+", "in_page=forged", thumbs[1]))  # a mark that is not theirs
    assert _actions(app, world.a).count("document.previewed") == before + 2


def test_someone_elses_thumbnail_url_is_recorded_for_them(app, world, listed):
    """The admin (who sees every document) replays the member's thumbnail URL: the mark names the member."""
    _, thumbs = listed
    admin = app.test_client()
    login(admin, world["a_client_admin"])
    before = _actions(app, world.a).count("document.previewed")
    assert admin.get(thumbs[0]).status_code == 200
    assert _actions(app, world.a).count("document.previewed") == before + 1


def test_another_tenants_thumbnail_is_not_found(app, world, listed):
    """Tenant B's admin asks for tenant A's thumbnails, with A's own URLs and under B's slug: 404, never a PNG."""
    docs, thumbs = listed
    b_admin = app.test_client()
    login(b_admin, world["b_client_admin"])
    for src in (thumbs[0], docs[0] + "/preview.png"):
        assert b_admin.get(src).status_code in (403, 404)  # A's workspace is not theirs at all
        own_slug = src.replace(f"/t/{world.a.slug}/", f"/t/{world.b.slug}/")
        r = b_admin.get(own_slug)
        assert r.status_code == 404 and not r.data.startswith(b"\x89PNG")
        # Holding the ETag tells them nothing either: still 404, not 304.
        assert b_admin.get(own_slug, headers={"If-None-Match": "*"}).status_code == 404
    assert b_admin.get(f"/t/{world.b.slug}/documents/not-a-uuid/preview.png").status_code == 404
