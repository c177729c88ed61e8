"""Public pages of trust: the signing keys, and checking a certificate."""

from __future__ import annotations

from flask import Response, abort, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import TextAreaField

from portal.access import public
from portal.trust import bp, certificates
from tenants import signing
from tenants.keyring import app_keyring


class VerifyForm(FlaskForm):
    certificate = FileField(_l("Certificate file"))
    text = TextAreaField(_l("…or paste its text"))


def _keys() -> list[signing.PublicKey]:
    return signing.public_keys(app_keyring())


@bp.route("/keys")
@public
def keys():
    """The public keys that verify what this portal signs (certificates, audit checkpoints)."""
    return render_template("trust/keys.html", keys=_keys())


@bp.route("/keys.json")
@public
def keys_json():
    """The same keys for programs."""
    return jsonify({"keys": [{"key_id": k.key_id, "alg": signing.ALGORITHM, "pem": k.pem,
                              "fingerprint_sha256": k.fingerprint} for k in _keys()]})


@bp.route("/keys/<key_id>.pem")
@public
def key_pem(key_id: str):
    """One public key as a PEM file (for ``openssl pkeyutl -verify``)."""
    key = next((k for k in _keys() if k.key_id == key_id), None)
    if key is None:
        abort(404)
    response = Response(key.pem, mimetype="application/x-pem-file")
    response.headers.set("Content-Disposition", "attachment", filename=f"{key.key_id}.pem")
    return response


@bp.route("/certificates/verify", methods=["GET", "POST"])
@public
def verify_certificate():
    """Check a certificate the portal signed: upload the file or paste its text."""
    form = VerifyForm()
    result = error = None
    status = 200  # "not valid" is the check's answer, not a fault of the request
    if request.method == "POST":
        if (request.content_length or 0) > certificates.MAX_BYTES + 64 * 1024:
            abort(413, description=_("This file is too large to be a certificate."))
        if not form.validate_on_submit():
            abort(400, description=_("The form has expired. Reload the page and try again."))
        upload = form.certificate.data
        text = upload.read(certificates.MAX_BYTES + 1).decode("utf-8", "replace") if upload else form.text.data or ""
        if not text.strip():
            error, status = _("Choose the certificate file, or paste its text."), 422
        else:
            try:
                result = certificates.check(text, _keys())
            except (certificates.NotACertificate, signing.BadSignature) as exc:
                error = _("Not valid: %(why)s", why=str(exc))
    return render_template("trust/verify.html", form=form, result=result, error=error), status
