"""Identity rules: sign-in, second factor, invites, resets, passwords, sign-out.

Services take the acting user explicitly, own their transaction (they commit)
and never read ``request`` except for the caller's IP, passed in by the views.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from flask import current_app
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_user, logout_user
from sqlalchemy import func, select

from portal import metrics
from portal.auth import mfa, passwords, sessions
from portal.extensions import db
from tenants import audit
from tenants.context import Scope, bound, for_tenant
from tenants.models import Membership, Tenant, User, UserToken, utcnow
from tenants.policy import Role
from tenants.reach import visible_tenants  # noqa: F401 - re-exported for the views


class AuthError(ValueError):
    """A refusal the user may read: says what was wrong and what to do; ``field`` names the form field it
    is about (a page shows it there), when it is about one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


LINK_INVALID = _l("This link has expired or was already used. Ask for a new one.")


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def user_by_email(email: str) -> User | None:
    return db.session.scalars(select(User).where(func.lower(User.email) == normalise_email(email))).first()


def authenticate(email: str, password: str, ip: str | None) -> User | None:
    """The user if ``password`` is right and the account active; None otherwise.

    Takes the same time whether or not the account exists, and records the
    attempt in the platform audit log.
    """
    user = user_by_email(email)
    ok = passwords.verify_password(user.password_hash if user else None, password)
    if ok and user is not None and user.is_active:
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = passwords.hash_password(password)
        return user
    audit.record("auth.signin_failed", audit.Actor.of(user) if user else audit.SYSTEM, ip=ip,
                 data={"email": normalise_email(email)[:254]})
    db.session.commit()
    metrics.signin_failed("password")
    return None


def mfa_required(user: User) -> bool:
    """Second factor is mandatory for provider roles, client admins, and tenants that enforce it."""
    if user.provider_role:
        return True
    with bound(Scope(user_id=user.id)):  # RLS shows a user their own memberships
        rows = db.session.execute(
            select(Membership.role, Tenant.enforce_mfa).join(Tenant, Tenant.id == Membership.tenant_id)
            .where(Membership.user_id == user.id).execution_options(rls_only=True)
        ).all()
    return any(role == Role.CLIENT_ADMIN or enforce for role, enforce in rows)


def finish_sign_in(user: User, ip: str | None, method: str) -> None:
    """Start a fresh server-side session for ``user`` and record the sign-in."""
    sessions.start(user)
    user.last_login_at = utcnow()
    audit.record("auth.signin", audit.Actor.of(user), ip=ip, data={"method": method})
    db.session.commit()
    login_user(user)


def sign_out(user: User | None, ip: str | None) -> None:
    """End this browser's session on the server."""
    sessions.end_current()
    if user is not None:
        audit.record("auth.signout", audit.Actor.of(user), ip=ip)
    db.session.commit()
    logout_user()


def sign_out_everywhere(user: User, ip: str | None) -> int:
    """End every session of ``user``, this one included."""
    count = sessions.end_all(user.id)
    audit.record("auth.signout_everywhere", audit.Actor.of(user), ip=ip, data={"sessions": count})
    db.session.commit()
    logout_user()
    return count


def change_password(user: User, current: str, new: str, ip: str | None) -> None:
    """Change ``user``'s password; every other session of theirs ends."""
    if not passwords.verify_password(user.password_hash, current):
        raise AuthError(_("Your current password is not right."), "current")
    problem = passwords.weakness(new, user.email)
    if problem:
        raise AuthError(problem, "password")
    user.password_hash = passwords.hash_password(new)
    sessions.end_all(user.id, keep_current=True)
    audit.record("auth.password_changed", audit.Actor.of(user), ip=ip)
    db.session.commit()


# --- second factor -----------------------------------------------------------------

def verify_second_factor(user: User, code: str, ip: str | None) -> str | None:
    """'totp' or 'recovery' when ``code`` is a valid, unused code; None otherwise."""
    if mfa.check_totp(user, code):
        return "totp"
    if mfa.use_recovery_code(user, code):
        audit.record("auth.recovery_code_used", audit.Actor.of(user), ip=ip,
                     data={"remaining": mfa.remaining_recovery_codes(user)})
        return "recovery"
    audit.record("auth.mfa_failed", audit.Actor.of(user), ip=ip)
    db.session.commit()
    metrics.signin_failed("second_factor")
    return None


def confirm_enrolment(user: User, code: str, ip: str | None) -> list[str]:
    """Confirm a pending TOTP secret with a first code; returns fresh recovery codes.

    Only for a person without a second factor: replacing one goes through
    ``begin_reenrolment`` and ``confirm_reenrolment``, which ask for the current one first.
    """
    if user.has_mfa:
        raise AuthError(_("Your second factor is set up already. To move to a new phone, choose "
                          "“Set up a new authenticator” under Account."))
    if not mfa.confirm_pending(user, code):
        raise AuthError(_("That code did not match. Check your phone's clock and enter the newest code."))
    user.mfa_enrolled_at = utcnow()
    codes = mfa.new_recovery_codes(user)
    audit.record("auth.mfa_enrolled", audit.Actor.of(user), ip=ip)
    return codes


def regenerate_recovery_codes(user: User, ip: str | None) -> list[str]:
    codes = mfa.new_recovery_codes(user)
    audit.record("auth.recovery_codes_regenerated", audit.Actor.of(user), ip=ip)
    db.session.commit()
    return codes


REENROL_REFUSED = _l("That password and code do not match. Enter your current password and the newest code "
                     "from your authenticator app (or one of your recovery codes).")


def _locked(user: User) -> User:
    # One change of a person's factor at a time: a double click, or two tabs, confirm once.
    return db.session.get(User, user.id, with_for_update=True, populate_existing=True) or user


def begin_reenrolment(user: User, password: str, code: str, ip: str | None) -> str:
    """Check ``user`` still holds both factors, then give them a new *pending* TOTP secret.

    For the signed-in person on their own account only. Needs the password and a
    current code of the active factor (a TOTP code, accepted once, or a recovery code,
    which is used up): a stolen session alone cannot replace the factor. The active
    secret is not touched: it keeps working until ``confirm_reenrolment``. A refusal
    changes nothing but the audit log (``auth.mfa_failed``) and raises ``AuthError``.
    Returns how the factor was proven: 'totp' or 'recovery'. Commits.
    """
    user = _locked(user)
    if not user.has_mfa:
        raise AuthError(_("You have no second factor yet: set one up first."))
    method = None
    if passwords.verify_password(user.password_hash, password):
        # The password first, so a wrong one never spends a code.
        if mfa.check_totp(user, code):
            method = "totp"
        elif mfa.use_recovery_code(user, code):
            method = "recovery"
            audit.record("auth.recovery_code_used", audit.Actor.of(user), ip=ip,
                         data={"remaining": mfa.remaining_recovery_codes(user)})
    if method is None:
        audit.record("auth.mfa_failed", audit.Actor.of(user), ip=ip, data={"during": "reenrolment"})
        db.session.commit()
        raise AuthError(str(REENROL_REFUSED))
    mfa.start_enrolment(user)
    audit.record("auth.mfa_reenrolment_started", audit.Actor.of(user), ip=ip, data={"method": method})
    db.session.commit()
    return method


def confirm_reenrolment(user: User, code: str, ip: str | None) -> None:
    """Make the pending secret of ``begin_reenrolment`` the active one, if ``code`` comes from it.

    From then on only the new authenticator's codes are accepted; the recovery codes
    stay as they were. Recorded as ``auth.mfa_reenrolled`` in the platform log and
    e-mailed to the person (after commit, through the outbox), so a change they did not
    make does not go unnoticed. A wrong code changes nothing but the audit log. Commits.
    """
    user = _locked(user)
    if not user.has_mfa or not mfa.confirm_pending(user, code):
        audit.record("auth.mfa_failed", audit.Actor.of(user), ip=ip, data={"during": "reenrolment_confirm"})
        db.session.commit()
        raise AuthError(_("That code did not match. Enter the newest code of the new entry in your "
                          "authenticator app, and check your phone's clock."))
    user.mfa_enrolled_at = utcnow()
    audit.record("auth.mfa_reenrolled", audit.Actor.of(user), ip=ip)
    from portal.mail import send

    base = current_app.config["BASE_URL"].rstrip("/")
    with force_locale(user.locale or "en"):
        subject = _("Your second factor was changed")
        body = (_("A new authenticator app was set up for your back-office portal account: codes from the "
                  "old one no longer work.") + "\n\n"
                + _("If it was you, there is nothing to do. If it was not, reset your password now and tell "
                    "your administrator:\n%(link)s", link=f"{base}/auth/reset") + "\n")
    send(user.email, subject, body)
    db.session.commit()


# --- single-use links: invites and password resets ------------------------------------

def _token_hash(raw: str) -> bytes:
    return hashlib.sha256(raw.encode()).digest()


def issue_link(user: User, purpose: str, ttl: timedelta, created_by: User | None = None) -> str:
    """Create a single-use link token; older unused tokens of the same purpose stop working."""
    for old in db.session.scalars(select(UserToken).where(
            UserToken.user_id == user.id, UserToken.purpose == purpose, UserToken.used_at.is_(None))):
        old.used_at = utcnow()
    raw = secrets.token_urlsafe(32)
    db.session.add(UserToken(user_id=user.id, purpose=purpose, token_hash=_token_hash(raw),
                             expires_at=utcnow() + ttl, created_by_id=created_by.id if created_by else None))
    return raw


def peek_link(raw: str, purpose: str) -> UserToken | None:
    """The valid, unused token behind ``raw`` (without consuming it), or None."""
    token = db.session.scalars(select(UserToken).where(
        UserToken.token_hash == _token_hash(raw or ""), UserToken.purpose == purpose)).first()
    if token is None or token.used_at is not None or token.expires_at < utcnow():
        return None
    return token


def link_replaced(raw: str, purpose: str) -> bool:
    """Whether ``raw`` is a link that stopped working because a newer one was e-mailed (a resent invitation).

    False for an unknown or still valid link, and for one used up (accepted, or expired) with no newer
    link sent after it.
    """
    token = db.session.scalars(select(UserToken).where(
        UserToken.token_hash == _token_hash(raw or ""), UserToken.purpose == purpose)).first()
    if token is None or token.used_at is None:
        return False
    return db.session.scalar(select(func.count()).select_from(UserToken).where(
        UserToken.user_id == token.user_id, UserToken.purpose == purpose,
        UserToken.created_at > token.created_at)) > 0


def _consume_link(raw: str, purpose: str) -> UserToken:
    token = db.session.scalars(select(UserToken).where(
        UserToken.token_hash == _token_hash(raw or ""), UserToken.purpose == purpose)
        .with_for_update(of=UserToken)).first()
    if token is None or token.used_at is not None or token.expires_at < utcnow():
        raise AuthError(str(LINK_INVALID))
    token.used_at = utcnow()
    return token


def link_url(purpose: str, raw: str) -> str:
    base = current_app.config["BASE_URL"].rstrip("/")
    return f"{base}/auth/{'invite' if purpose == 'invite' else 'reset'}/{raw}"


def invite(actor: User, email: str, name: str, *, role: Role, tenant: Tenant | None, ip: str | None) -> User:
    """Invite a person: to a tenant with a client role, or to the provider with a provider role.

    Creates the user if new (no password until they accept), the membership for a
    client role, and e-mails a single-use, expiring link. The caller must have
    checked the authorisation table and bound ``tenant`` for client roles.
    """
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise AuthError(_("Enter a valid e-mail address."))
    user = user_by_email(email)
    if user is None:
        # Nameless, the person is shown by their address until they give a name: cut to the column's 200
        # characters (an address may have 254), or a long one answered 500.
        user = User(email=email, name=(name.strip() or email)[:200], locale=tenant.locale if tenant else "en")
        db.session.add(user)
        db.session.flush()
    if tenant is not None:
        if user.provider_role:
            raise AuthError(_("This address belongs to provider staff; use another address for client access."))
        existing = db.session.scalars(select(Membership).where(Membership.user_id == user.id)).first()
        if existing is not None:
            raise AuthError(_("This person is already a user of this workspace."))
        db.session.add(Membership(tenant_id=tenant.id, user_id=user.id, role=role, invited_by_id=actor.id))
    else:
        if user.provider_role:
            raise AuthError(_("This person is already on the provider's staff."))
        if user.password_hash:
            raise AuthError(_("This address already has a client account; use another address for staff."))
        user.provider_role = role
    mail_link = user.password_hash is None
    if mail_link:
        raw = issue_link(user, "invite", current_app.config["INVITE_TTL"], actor)
    audit.record("user.invited", audit.Actor.of(actor), tenant_id=tenant.id if tenant else None, ip=ip,
                 object_type="user", object_id=user.id, data={"email": email, "role": str(role)})
    from portal.mail import send

    send(email, *invitation_mail(actor, user, tenant, raw if mail_link else None))
    db.session.commit()
    return user


def invitation_mail(actor: User, user: User, tenant: Tenant | None, raw: str | None, *,
                    resent: bool = False) -> tuple[str, str]:
    """The (subject, body) of the e-mail inviting ``user`` to ``tenant`` (None: the provider's team).

    With ``raw``, the single-use link to set a password; without, a note that an existing
    account got access. ``resent`` adds that the link of the earlier e-mail no longer works.
    Written in the recipient's language: their own choice, which a new person takes from the tenant.
    """
    with force_locale(user.locale or "en"):
        where = tenant.name if tenant else _("the provider's team")
        if raw:
            days = current_app.config["INVITE_TTL"].days
            subject = _("You are invited to %(where)s", where=where)
            body = (_("%(person)s invited you to %(where)s on the back-office portal.", person=actor.name, where=where)
                    + "\n\n" + ngettext("Set your password here (the link works once and expires in %(num)d day):",
                                        "Set your password here (the link works once and expires in %(num)d days):",
                                        days) + f"\n{link_url('invite', raw)}\n")
            if resent:
                body += "\n" + _("This e-mail replaces our earlier invitation: the link in that one no longer "
                                  "works.") + "\n"
        else:
            subject = _("You now have access to %(where)s", where=where)
            body = _("%(person)s gave you access to %(where)s. Sign in as usual: %(link)s",
                     person=actor.name, where=where, link=current_app.config["BASE_URL"]) + "\n"
    return subject, body


# Two sends closer than this are one double click: the second is refused, nothing is sent again.
RESEND_INTERVAL = timedelta(minutes=1)


class ResendTooSoon(AuthError):
    """The person was e-mailed an invitation less than ``RESEND_INTERVAL`` ago; nothing was sent."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def resend_invitation(actor: User, user: User, tenant: Tenant | None, ip: str | None) -> None:
    """E-mail a person still to accept their invitation a fresh link; the links sent before stop working.

    The caller checked the action that invites them (``tenant:users.manage`` with ``tenant``
    bound and ``user`` found among its members; ``provider:staff.manage`` with ``tenant`` None
    for the provider's people). The link gets a full lifetime again, the e-mail is the
    invitation's own (``invitation_mail``, in the person's language), sent after the commit, and
    the resend is recorded as ``user.invitation_resent`` (the tenant's log, or the platform log).
    Raises ``AuthError`` (nothing written) when the person has accepted already or is disabled,
    and ``ResendTooSoon`` when an invitation left less than a minute ago (a double click). Commits.
    """
    user = _locked(user)  # two clicks at once: the second waits here and then sees the first link
    last = db.session.scalar(select(func.max(UserToken.created_at)).where(
        UserToken.user_id == user.id, UserToken.purpose == "invite"))
    wait = (last + RESEND_INTERVAL - utcnow()).total_seconds() if last else 0
    refusal: AuthError | None = None
    if user.password_hash is not None:
        refusal = AuthError(_("%(email)s has accepted the invitation already and signs in with their own "
                              "password: there is nothing to resend. If they forgot it, they can reset it on the "
                              "sign-in page.", email=user.email))
    elif not user.is_active:
        refusal = AuthError(_("%(email)s's account is disabled. Enable it first, then resend the invitation.",
                              email=user.email))
    elif wait > 0:
        refusal = ResendTooSoon(_("An invitation went to %(email)s less than a minute ago, so it was not sent "
                                  "again. E-mails can take a few minutes to arrive; ask them to look in their spam "
                                  "folder too.", email=user.email), retry_after=int(wait) + 1)
    if refusal is not None:
        db.session.rollback()  # let go of the row lock: nothing was written
        raise refusal
    raw = issue_link(user, "invite", current_app.config["INVITE_TTL"], actor)
    audit.record("user.invitation_resent", audit.Actor.of(actor), tenant_id=tenant.id if tenant else None, ip=ip,
                 object_type="user", object_id=user.id, data={"email": user.email})
    from portal.mail import send

    send(user.email, *invitation_mail(actor, user, tenant, raw, resent=True))
    db.session.commit()


def accept_invite(raw: str, name: str, password: str, ip: str | None) -> User:
    """Set the password of an invited user through their single-use link."""
    token = _consume_link(raw, "invite")
    user = token.user
    problem = passwords.weakness(password, user.email)
    if problem:
        db.session.rollback()
        raise AuthError(problem, "password")
    if name.strip():
        user.name = name.strip()[:200]
    user.password_hash = passwords.hash_password(password)
    audit.record("auth.invite_accepted", audit.Actor.of(user), ip=ip)
    db.session.commit()
    return user


def request_reset(email: str, ip: str | None) -> None:
    """E-mail a reset link if the account exists; says nothing either way (no enumeration)."""
    user = user_by_email(email)
    if user is None or not user.is_active or not user.password_hash:
        passwords.verify_password(None, "x")  # same work either way
        return
    raw = issue_link(user, "reset", current_app.config["RESET_TTL"])
    from portal.mail import send

    with force_locale(user.locale or "en"):  # in the language the person reads the portal in
        subject = _("Reset your password")
        body = (_("Someone asked to reset the password of your back-office portal account.") + "\n"
                + _("If it was you, use this link within an hour (it works once):") + f"\n{link_url('reset', raw)}\n"
                + _("If it was not you, ignore this e-mail; your password has not changed.") + "\n")
    send(user.email, subject, body)
    audit.record("auth.reset_requested", audit.Actor.of(user), ip=ip)
    db.session.commit()


def reset_password(raw: str, password: str, ip: str | None) -> User:
    """Set a new password through a reset link; every session of the user ends."""
    token = _consume_link(raw, "reset")
    user = token.user
    problem = passwords.weakness(password, user.email)
    if problem:
        db.session.rollback()
        raise AuthError(problem, "password")
    user.password_hash = passwords.hash_password(password)
    sessions.end_all(user.id)
    audit.record("auth.password_reset", audit.Actor.of(user), ip=ip)
    db.session.commit()
    return user


def set_active(actor: User, user: User, active: bool, ip: str | None) -> None:
    """Disable or re-enable an account; disabling ends all its sessions at once."""
    user.is_active = active
    if not active:
        sessions.end_all(user.id)
    audit.record("user.enabled" if active else "user.disabled", audit.Actor.of(actor), ip=ip,
                 object_type="user", object_id=user.id)
    db.session.commit()


def with_tenant(user_id: uuid.UUID | None, tenant: Tenant) -> bound:
    """Bind ``tenant`` for a block (CLI and provider console writes into one tenant)."""
    return for_tenant(tenant.id, user_id)
