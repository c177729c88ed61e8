"""Receiving an upload request: the same for the pages and the API.

The body is read as a stream (``multipart.iter_parts``); form fields apply to the
files that follow them, so clients send ``category``/``period``/``tags``/``document``/
``item`` first and then one or more ``file`` parts. Each file is stored or refused
on its own, and a refused file never stops the next one.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Request
from flask_babel import gettext as _

from portal.documents import services
from portal.documents.multipart import FieldPart, MalformedUpload, iter_parts
from tenants.models import Tenant, User

TARGET_FIELDS = ("category", "period", "tags", "document", "item")


class UploadRejected(services.DocumentError):
    """The request as a whole cannot be taken (not multipart, too large, malformed)."""


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
            try:
                target = services.upload_target(actor, category=fields.get("category"),
                                                period=fields.get("period"), tags=fields.get("tags"),
                                                document_id=fields.get("document") or None,
                                                item_id=fields.get("item") or None)
            except services.DocumentError as err:
                results.append(services.UploadResult(part.filename, "refused", str(err), code="invalid"))
                continue
            results.append(services.upload(actor, tenant, part.data, filename=part.filename, target=target,
                                           ip=request.remote_addr))
    except MalformedUpload as exc:
        raise UploadRejected(_("The upload was cut off or malformed (%(why)s). Try again.", why=str(exc))) from None
    if not results:
        raise UploadRejected(_("Choose at least one file to upload."))
    return results
