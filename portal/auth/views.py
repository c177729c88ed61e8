"""Sign-in pages. Views parse input, call one service, render."""

from __future__ import annotations

import hashlib
import time
import uuid

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import public, requires
from portal.auth import bp, mfa, services
from portal.auth.forms import CodeForm, LoginForm, RenewForm, ResetRequestForm, SetPasswordForm, show_refusal
from portal.extensions import db, limiter
from tenants.models import User

PENDING_SECONDS = 300
# Time to scan the new QR code and confirm it, once both factors were proven (``renew``).
RENEW_SECONDS = 600
RENEW_UNTIL = "mfa_renew_until"
def TOO_MANY() -> str:  # noqa: N802 - Flask-Limiter calls it when it refuses
    return _("Too many attempts. Wait a minute, then try again.")


def _account_key() -> str:
    email = services.normalise_email(request.form.get("email", ""))
    return "acct:" + hashlib.sha256(email.encode()).hexdigest()


def _pending_key() -> str:
    return "mfa:" + str(session.get("mfa_user", request.remote_addr))


def _signed_in_key() -> str:
    # The signed-in person's own account: the per-account limit of sign-in, for their second factor.
    return "acct:" + hashlib.sha256(services.normalise_email(current_user.email).encode()).hexdigest()


def _safe_next(target: str | None) -> str:
    # Only same-site paths: never an absolute URL or a scheme-relative one.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("main.index")


def _pending_user() -> User | None:
    uid, until = session.get("mfa_user"), session.get("mfa_until", 0)
    if not uid or until < time.time():
        return None
    user = db.session.get(User, uuid.UUID(uid))
    return user if user is not None and user.is_active else None


def _begin_second_step(user: User, next_url: str) -> object:
    session.clear()
    session.update(mfa_user=str(user.id), mfa_until=time.time() + PENDING_SECONDS, next=next_url)
    if user.has_mfa:
        return redirect(url_for("auth.second_factor"))
    return redirect(url_for("auth.enrol"))


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_IP"], methods=["POST"], error_message=TOO_MANY)
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_ACCOUNT"], methods=["POST"],
               key_func=_account_key, error_message=TOO_MANY)
def login():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        user = services.authenticate(form.email.data, form.password.data, request.remote_addr)
        if user is None:
            flash(_("That e-mail and password do not match an active account. "
                    "Check them, or reset your password."), "error")
        else:
            next_url = _safe_next(request.args.get("next"))
            if user.has_mfa or services.mfa_required(user):
                return _begin_second_step(user, next_url)
            services.finish_sign_in(user, request.remote_addr, "password")
            return redirect(next_url)
    return render_template("auth/login.html", form=form)


@bp.route("/mfa", methods=["GET", "POST"])
@public
@limiter.limit("5 per minute", key_func=_pending_key, methods=["POST"], error_message=TOO_MANY)
def second_factor():
    user = _pending_user()
    if user is None or not user.has_mfa:
        flash(_("Your sign-in timed out. Please sign in again."), "error")
        return redirect(url_for("auth.login"))
    form = CodeForm()
    if form.validate_on_submit():
        method = services.verify_second_factor(user, form.code.data, request.remote_addr)
        if method:
            next_url = session.get("next")
            services.finish_sign_in(user, request.remote_addr, method)
            if method == "recovery":
                flash(_("You used a recovery code. %(n)d are left; make new ones under Account.",
                        n=mfa.remaining_recovery_codes(user)), "warning")
            return redirect(_safe_next(next_url))
        flash(_("That code is not valid, or was used already. Enter the newest code from your app, "
                "or one of your recovery codes."), "error")
    return render_template("auth/mfa.html", form=form)


@bp.route("/mfa/enrol", methods=["GET", "POST"])
@public
@limiter.limit("10 per minute", key_func=_pending_key, methods=["POST"], error_message=TOO_MANY)
def enrol():
    """Set up the authenticator app: during sign-in (pending) or from the account page."""
    user = current_user if current_user.is_authenticated else _pending_user()
    if user is None:
        return redirect(url_for("auth.login"))
    if current_user.is_anonymous and user.has_mfa:
        return redirect(url_for("auth.second_factor"))
    if user.has_mfa:
        # Set up already: say so, and never make or show a secret here (``renew`` replaces one).
        if request.method == "POST":
            flash(_("Your second factor is set up already: nothing was changed."), "info")
            return redirect(url_for("auth.enrol"))
        return render_template("auth/enrolled.html", since=format_datetime(user.mfa_enrolled_at))
    form = CodeForm()
    if request.method == "GET" or not user.totp_pending_enc:
        mfa.start_enrolment(user)
        db.session.commit()
    if form.validate_on_submit():
        try:
            codes = services.confirm_enrolment(user, form.code.data, request.remote_addr)
        except services.AuthError as err:
            db.session.rollback()
            flash(str(err), "error")
        else:
            next_url = session.get("next")
            if current_user.is_authenticated:
                db.session.commit()
            else:
                services.finish_sign_in(user, request.remote_addr, "totp_enrolment")
            # Shown once, in this response only: never stored in the (readable) cookie.
            return render_template("account/recovery_codes.html", codes=codes, next=_safe_next(next_url))
    secret = mfa.pending_secret(user)
    uri = mfa.provisioning_uri(user, secret)
    return render_template("auth/enrol.html", form=form, qr=mfa.qr_data_uri(uri), secret=secret)


@bp.route("/mfa/renew", methods=["GET", "POST"])
@requires("account:manage")
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_IP"], methods=["POST"], error_message=TOO_MANY)
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_ACCOUNT"], methods=["POST"],
               key_func=_signed_in_key, error_message=TOO_MANY)
def renew():
    """Set up a new authenticator: the password and a current code first, then the new QR code.

    The new secret is shown once, in the answer to the proof; the current one keeps
    working until ``renew_confirm`` receives a code of the new one.
    """
    user = current_user._get_current_object()
    if not user.has_mfa:
        return redirect(url_for("auth.enrol"))
    form = RenewForm()
    if form.validate_on_submit():
        try:
            services.begin_reenrolment(user, form.password.data, form.code.data, request.remote_addr)
        except services.AuthError as err:
            form.code.errors = [*form.code.errors, str(err)]
        else:
            session[RENEW_UNTIL] = time.time() + RENEW_SECONDS
            secret = mfa.pending_secret(user)
            return render_template("auth/enrol.html", form=CodeForm(formdata=None), secret=secret,
                                   qr=mfa.qr_data_uri(mfa.provisioning_uri(user, secret)),
                                   action=url_for("auth.renew_confirm"), renewing=True)
    return render_template("auth/renew.html", form=form), 422 if form.errors else 200


@bp.route("/mfa/renew/confirm", methods=["POST"])
@requires("account:manage")
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_IP"], error_message=TOO_MANY)
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_ACCOUNT"], key_func=_signed_in_key, error_message=TOO_MANY)
def renew_confirm():
    """Switch to the new authenticator with a code of it. A refusal does not show its secret again."""
    user = current_user._get_current_object()
    if session.get(RENEW_UNTIL, 0) < time.time() or not user.has_mfa:
        flash(_("Setting up the new authenticator took too long, or was not started. Start again: your current "
                "authenticator still works."), "error")
        return redirect(url_for("auth.renew"))
    form = CodeForm()
    if form.validate_on_submit():
        try:
            services.confirm_reenrolment(user, form.code.data, request.remote_addr)
        except services.AuthError as err:
            form.code.errors = [*form.code.errors, str(err)]
        else:
            session.pop(RENEW_UNTIL, None)
            flash(_("Your new authenticator is set up. Codes from the old one no longer work."), "success")
            return redirect(url_for("auth.enrol"))
    return render_template("auth/renew_confirm.html", form=form), 422


@bp.route("/logout", methods=["POST"])
@requires("account:manage")
def logout():
    services.sign_out(current_user._get_current_object(), request.remote_addr)
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/invite/<token>", methods=["GET", "POST"])
@public
def accept_invite(token: str):
    link = services.peek_link(token, "invite")
    if link is None:
        return render_template("auth/link_invalid.html", replaced=services.link_replaced(token, "invite")), 410
    form = SetPasswordForm(name=link.user.name)
    if form.validate_on_submit():
        try:
            user = services.accept_invite(token, form.name.data or "", form.password.data, request.remote_addr)
        except services.AuthError as err:
            show_refusal(form, err)
        else:
            if user.has_mfa or services.mfa_required(user):
                flash(_("Password set. Now set up your authenticator app."), "success")
                return _begin_second_step(user, url_for("main.index"))
            services.finish_sign_in(user, request.remote_addr, "invite")
            flash(_("Welcome! Your password is set."), "success")
            return redirect(url_for("main.index"))
    return render_template("auth/set_password.html", form=form, email=link.user.email, invite=True)


@bp.route("/reset", methods=["GET", "POST"])
@public
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_IP"], methods=["POST"], error_message=TOO_MANY)
def request_reset():
    form = ResetRequestForm()
    if form.validate_on_submit():
        services.request_reset(form.email.data, request.remote_addr)
        flash(_("If an account uses that address, we have e-mailed it a link to reset the password. "
                "The link works once, for an hour."), "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset_request.html", form=form)


@bp.route("/reset/<token>", methods=["GET", "POST"])
@public
def reset(token: str):
    link = services.peek_link(token, "reset")
    if link is None:
        return render_template("auth/link_invalid.html"), 410
    form = SetPasswordForm()
    del form.name
    if form.validate_on_submit():
        try:
            services.reset_password(token, form.password.data, request.remote_addr)
        except services.AuthError as err:
            show_refusal(form, err)
        else:
            flash(_("Your password is changed and every session was signed out. Sign in with the new one."),
                  "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/set_password.html", form=form, email=link.user.email, invite=False)
