"""Forms of the client workspace pages (CSRF-protected by Flask-WTF).

No form has a tenant field: the tenant comes from the URL through the gate, so a
posted ``tenant_id`` is never read (mass assignment).
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, SelectField, StringField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length


def role_choices() -> list[SelectChoice]:
    """The client roles a client admin can give, with their labels."""
    return [
        SelectChoice("client_member", _l("Member: uploads documents and answers requests")),
        SelectChoice("client_approver", _l("Approver: also approves payroll, closes and statements")),
        SelectChoice("client_admin", _l("Admin: also manages users and settings")),
    ]


class InviteForm(FlaskForm):
    # The address itself is checked by the service (one rule for pages and API).
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    name = StringField(_l("Name"), validators=[Length(max=200)])
    role = SelectField(_l("Role"), choices=role_choices, default="client_member")


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=role_choices)


class MfaForm(FlaskForm):
    enforce = BooleanField(_l("Require a second factor for everyone"))


class TokenForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=100)],
                       render_kw={"placeholder": _l("e.g. accounting export")})
    scope = SelectField(_l("Access"), choices=[SelectChoice("read", _l("Read only")),
                                               SelectChoice("write", _l("Read and write"))], default="read")
