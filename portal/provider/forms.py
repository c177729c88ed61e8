"""Provider console forms (CSRF-protected by Flask-WTF).

The forms check shape only (required, length, one of the offered choices); the
rules (slug format, a taken slug, who may be invited) live in the services, and
their refusals are shown on the same form.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, SelectChoice, SelectField, StringField
from wtforms.validators import AnyOf, DataRequired, Length, ValidationError

from tenants.lifecycle import CURRENCIES, STATUSES, slug_problem

# Offered in a <datalist>; any IANA time zone name is accepted.
COMMON_TIMEZONES = ("Asia/Ho_Chi_Minh", "Asia/Bangkok", "Asia/Singapore", "Asia/Kuala_Lumpur",
                    "Asia/Jakarta", "Asia/Manila", "Asia/Hong_Kong", "Asia/Shanghai", "Asia/Seoul",
                    "Asia/Tokyo", "Australia/Sydney", "Europe/London", "Europe/Paris",
                    "America/New_York", "America/Los_Angeles", "UTC")


def _currency_choices() -> list[SelectChoice]:
    # VND first: the provider's home currency and the default.
    return [SelectChoice(c) for c in sorted(CURRENCIES, key=lambda c: (c != "VND", c))]


class TenantForm(FlaskForm):
    """A new client tenant and the client admin to invite."""

    name = StringField(_l("Company name"), validators=[DataRequired(), Length(max=200)])
    slug = StringField(_l("Short name (used in links)"), validators=[DataRequired(), Length(max=63)],
                       # The dash is escaped: browsers compile ``pattern`` with the ``v`` flag, where a bare
                       # "-" in a class is a syntax error (the pattern would then check nothing).
                       render_kw={"autocapitalize": "none", "spellcheck": "false",
                                  "pattern": r"[a-z0-9][a-z0-9\-]{1,61}[a-z0-9]"})
    currency = SelectField(_l("Currency"), choices=_currency_choices(), default="VND")
    timezone = StringField(_l("Time zone"), default="Asia/Ho_Chi_Minh",
                           validators=[DataRequired(), Length(max=64)],
                           render_kw={"list": "timezones", "autocapitalize": "none"})
    locale = SelectField(_l("Language"), default="vi", choices=[
        SelectChoice("vi", "Tiếng Việt", {"lang": "vi"}), SelectChoice("en", "English", {"lang": "en"})])
    admin_email = EmailField(_l("Client admin's e-mail"), validators=[DataRequired(), Length(max=254)])
    admin_name = StringField(_l("Client admin's name"), validators=[Length(max=200)])

    def validate_slug(self, field: StringField) -> None:
        """The short name's shape, here too so that it shows with every other error of the form at once
        (the service checks it again, and whether it is taken)."""
        problem = slug_problem(field.data or "")
        if problem:
            raise ValidationError(problem)


class StaffInviteForm(FlaskForm):
    """A person to invite to the provider's team."""

    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    name = StringField(_l("Name"), validators=[Length(max=200)])
    role = SelectField(_l("Role"), default="staff", choices=[
        SelectChoice("staff", _l("Staff")), SelectChoice("manager", _l("Manager")),
        SelectChoice("provider_admin", _l("Provider admin"))])


class StatusForm(FlaskForm):
    """Suspend or re-activate a tenant (the button carries the new status)."""

    status = HiddenField(validators=[AnyOf(STATUSES)])


class ActiveForm(FlaskForm):
    """Disable or enable a person (the button carries 1 or 0)."""

    active = HiddenField(validators=[AnyOf(("0", "1"))])


class AssignForm(FlaskForm):
    """Assign or unassign one person (by public id) for the tenant in the URL."""

    user_id = HiddenField(validators=[DataRequired(), Length(max=36)])


class OffboardForm(FlaskForm):
    confirm = StringField(_l("Type the short name to confirm"), validators=[Length(max=63)],
                          render_kw={"autocomplete": "off", "spellcheck": "false"})
