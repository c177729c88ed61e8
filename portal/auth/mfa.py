"""Second factor: TOTP (single-use within its window) and hashed recovery codes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import pyotp
import segno
from sqlalchemy import select

from portal.extensions import db
from tenants.fields import seal, unseal
from tenants.models import RecoveryCode, User, utcnow

ISSUER = "Back-office portal"
RECOVERY_CODES = 10


def start_enrolment(user: User) -> None:
    """Give ``user`` a fresh *pending* TOTP secret; the current one stays until confirmed."""
    user.totp_pending_enc = seal(pyotp.random_base32())


def pending_secret(user: User) -> str:
    return unseal(user.totp_pending_enc)


def confirm_pending(user: User, code: str) -> bool:
    """Make the pending secret the active one if ``code`` matches it."""
    if not user.totp_pending_enc:
        return False
    totp = pyotp.TOTP(pending_secret(user))
    if not totp.verify("".join(ch for ch in code if ch.isdigit()), valid_window=1):
        return False
    user.totp_secret_enc, user.totp_pending_enc = user.totp_pending_enc, None
    user.totp_last_step = int(time.time()) // totp.interval + 1  # the enrolment code is spent
    return True


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_data_uri(uri: str) -> str:
    """The QR code of ``uri`` as an SVG data URI (rendered by us, no external service)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def check_totp(user: User, code: str) -> bool:
    """Accept a TOTP code at most once: a code whose time step was used already is refused.

    Allows one step of clock drift either way. Marks the step used on success
    (the caller commits).
    """
    code = "".join(ch for ch in code if ch.isdigit())
    if not user.totp_secret_enc or len(code) != 6:
        return False
    totp = pyotp.TOTP(unseal(user.totp_secret_enc))
    now_step = int(time.time()) // totp.interval
    for step in (now_step - 1, now_step, now_step + 1):
        if step <= user.totp_last_step:
            continue
        if hmac.compare_digest(totp.at(step * totp.interval), code):
            user.totp_last_step = step
            return True
    return False


def _hash_code(code: str) -> bytes:
    return hashlib.sha256(code.replace("-", "").strip().lower().encode()).digest()


def new_recovery_codes(user: User) -> list[str]:
    """Replace ``user``'s recovery codes; returns the plaintext codes to show once."""
    db.session.execute(RecoveryCode.__table__.delete().where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = secrets.token_hex(5)
        codes.append(f"{raw[:5]}-{raw[5:]}")
        db.session.add(RecoveryCode(user_id=user.id, code_hash=_hash_code(raw)))
    return codes


def use_recovery_code(user: User, code: str) -> bool:
    """Consume one unused recovery code; False if unknown or already used."""
    row = db.session.scalars(
        select(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _hash_code(code),
               RecoveryCode.used_at.is_(None))
        .with_for_update()
    ).first()
    if row is None:
        return False
    row.used_at = utcnow()
    return True


def remaining_recovery_codes(user: User) -> int:
    return len(db.session.scalars(
        select(RecoveryCode.id).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    ).all())
