"""Forms of the client workspace pages (CSRF-protected by Flask-WTF).

No form has a tenant field: the tenant comes from the URL through the gate, so a
posted ``tenant_id`` is never read (mass assignment).
"""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, EmailField, SelectField, StringField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from portal.clients.services import LogFilter


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


class DayField(DateField):
    """A day as ``<input type="date">`` sends it (YYYY-MM-DD), refused with words a person can act on."""

    def process_formdata(self, valuelist: list) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_l("Give the date as YYYY-MM-DD, for example 2025-03-31.")) from None


class LogFilterForm(FlaskForm):
    """The filters of a log page (the access log, the provider's audit log): read from the query string.

    A GET form that changes nothing, so it has no CSRF token. Side and kind are checked by the
    service (``services.check_filter``), one rule for the pages, the CSV and the API.
    """

    class Meta:
        csrf = False

    since = DayField(_l("From"), name="from", validators=[Optional()])
    until = DayField(_l("To"), name="to", validators=[Optional()])
    side = SelectField(_l("Who"), validate_choice=False)
    kind = SelectField(_l("What"), validate_choice=False)

    def validate_until(self, field: DayField) -> None:
        """A range that ends before it starts is refused next to its end (the service says the same)."""
        if self.since.data and field.data and self.since.data > field.data:
            raise ValidationError(_("The start date %(start)s is after the end date %(end)s: swap them, or pick "
                                    "again.", start=self.since.data.isoformat(), end=field.data.isoformat()))

    def offer(self, sides: Mapping[str, object], kinds: Mapping[str, object]) -> LogFilterForm:
        """Offer these sides and kinds of event (value: label), after "everyone" and "everything"."""
        self.side.choices = [SelectChoice("", _l("Everyone")), *(SelectChoice(k, v) for k, v in sides.items())]
        self.kind.choices = [SelectChoice("", _l("Everything")), *(SelectChoice(k, v) for k, v in kinds.items())]
        return self

    def wanted(self) -> LogFilter:
        """What the reader asked for (call after ``validate``)."""
        return LogFilter(side=self.side.data or None, kind=self.kind.data or None,
                         since=self.since.data, until=self.until.data)

    def query(self) -> dict[str, str]:
        """The filter as query parameters (only what is set), for the links that keep it: older events, CSV."""
        fields = {"from": self.since, "to": self.until, "side": self.side, "kind": self.kind}
        return {name: field.raw_data[0] for name, field in fields.items() if field.raw_data and field.raw_data[0]}
