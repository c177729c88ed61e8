"""Account pages."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import requires
from portal.account import bp
from portal.auth import mfa, services
from portal.auth.forms import ChangePasswordForm, ConfirmForm, show_refusal


@bp.route("/")
@requires("account:manage")
def index():
    return render_template("account/index.html", password_form=ChangePasswordForm(),
                           remaining=mfa.remaining_recovery_codes(current_user))


@bp.route("/password", methods=["POST"])
@requires("account:manage")
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            services.change_password(current_user, form.current.data, form.password.data, request.remote_addr)
        except services.AuthError as err:
            show_refusal(form, err)
        else:
            flash(_("Password changed. Your other sessions were signed out."), "success")
            return redirect(url_for("account.index"))
    # Every error is shown next to its field (the form's macro), once.
    return render_template("account/index.html", password_form=form,
                           remaining=mfa.remaining_recovery_codes(current_user)), 422


@bp.route("/sign-out-everywhere", methods=["POST"])
@requires("account:manage")
def sign_out_everywhere():
    if ConfirmForm().validate_on_submit():
        count = services.sign_out_everywhere(current_user._get_current_object(), request.remote_addr)
        flash(_("Signed out of %(n)d session(s), this one included.", n=count), "success")
    return redirect(url_for("auth.login"))


@bp.route("/recovery-codes", methods=["POST"])
@requires("account:manage")
def recovery_codes():
    """Make new recovery codes; shown once, in this response only (never stored in the cookie)."""
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("account.index"))
    codes = services.regenerate_recovery_codes(current_user, request.remote_addr)
    return render_template("account/recovery_codes.html", codes=codes, next=url_for("account.index"))
