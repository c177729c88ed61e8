"""Receiving an upload request: the same for the pages and the API.

The body is read as a stream (``multipart.iter_parts``); form fields apply to the
files that follow them, so clients send ``category``/``period``/``tags``/``document``/
``item`` first and then one or more ``file`` parts. Each file is stored or refused
on its own, and a refused file never stops the next one.

When a part the upload needs is down (the object store, the database: ``tenants.outages``), that file is
"not stored, try again" (code ``unavailable``) and so is every file after it in the request, without
trying: nothing of theirs is kept (``services.upload`` leaves no object without its row), and the
views answer 503 with ``Retry-After``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from flask import Request
from flask_babel import gettext as _

from portal.documents import services
from portal.documents.multipart import FieldPart, MalformedUpload, iter_parts
from portal.extensions import db
from tenants.models import Tenant, User
from tenants.outages import dependency_down

log = logging.getLogger(__name__)

TARGET_FIELDS = ("category", "period", "tags", "document", "item")


class UploadRejected(services.DocumentError):
    """The request as a whole cannot be taken (not multipart, too large, malformed)."""


UNAVAILABLE = "unavailable"  # the code of a file not stored because a part the upload needs is down


def unavailable(results: list[services.UploadResult]) -> bool:
    """Whether a file of the request was not stored because a part the upload needs is down."""
    return any(r.code == UNAVAILABLE for r in results)


def _not_stored_message() -> str:
    return _("Not stored: the service is briefly unavailable. Nothing of this file was kept; upload it again in "
             "a minute.")


def receive(request: Request, actor: User, tenant: Tenant, *,
            check_field: Callable[[str, str], None] | None = None) -> list[services.UploadResult]:
    """Store every file of a multipart upload request; ``check_field`` sees each field first (CSRF)."""
    mimetype, options = request.mimetype, request.mimetype_params
    boundary = options.get("boundary", "").encode("latin-1")
    if mimetype != "multipart/form-data" or not boundary:
        raise UploadRejected(_("Send the files as multipart/form-data, with the fields first and then "
                               "one or more parts named 'file'."))
    too_big = services.refuse_early(tenant, request.content_length)
    if too_big:
        error = UploadRejected(too_big)
        error.status = 413
        raise error
    fields: dict[str, str] = {}
    results: list[services.UploadResult] = []
    down: str | None = None  # the part found down: the files after it are not tried
    # In the reader's language, chosen now: after a lost connection the user is expired and cannot be read.
    not_stored = _not_stored_message()
    try:
        for part in iter_parts(request.stream, boundary):
            if isinstance(part, FieldPart):
                if check_field:
                    check_field(part.name, part.value)
                fields[part.name] = part.value
                continue
            if not part.filename:
                continue  # an empty file input
            if check_field:
                check_field("file", "")
            if down:
                results.append(services.UploadResult(part.filename, "refused", not_stored, code=UNAVAILABLE))
                continue
            try:
                target = services.upload_target(actor, category=fields.get("category"),
                                                period=fields.get("period"), tags=fields.get("tags"),
                                                document_id=fields.get("document") or None,
                                                item_id=fields.get("item") or None)
            except services.DocumentError as err:
                results.append(services.UploadResult(part.filename, "refused", str(err), code="invalid"))
                continue
            try:
                results.append(services.upload(actor, tenant, part.data, filename=part.filename, target=target,
                                               ip=request.remote_addr))
            except Exception as exc:
                down = dependency_down(exc)
                if down is None:
                    raise
                log.warning("upload not stored: %s unavailable (%s)", down, type(exc).__name__)
                with contextlib.suppress(Exception):  # the connection may be gone, and its transaction with it
                    db.session.rollback()
                results.append(services.UploadResult(part.filename, "refused", not_stored, code=UNAVAILABLE))
    except MalformedUpload as exc:
        raise UploadRejected(_("The upload was cut off or malformed (%(why)s). Try again.", why=str(exc))) from None
    if not results:
        raise UploadRejected(_("Choose at least one file to upload."))
    return results
