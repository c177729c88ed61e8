"""Forms of the tasks page (CSRF-protected by Flask-WTF).

They check shape only (a title that is not blank, lengths, one of the offered
choices, a real date); the rules (which line, who may work on the tenant, four
eyes) live in ``portal.work.services``, whose refusals are shown on the same form.
Each field has an id of its own: both forms can be on one page.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, StopValidation

from portal.work.models import ServiceLine
from portal.work.services import PRIORITIES
from tenants.models import User

# ``required`` (from DataRequired) lets a browser send a title of only spaces: this pattern refuses
# those in the browser too, as DataRequired does on the server.
NOT_BLANK = {"pattern": r".*\S.*", "title": _l("Write a few words, not only spaces.")}


class RequestWorkForm(FlaskForm):
    """A client asks for work ("Ask us for something"), attaching documents of their vault."""

    title = StringField(_l("What do you need?"), id="ask-title", validators=[DataRequired(), Length(max=200)],
                        render_kw={**NOT_BLANK, "placeholder": _l("Register two new employees for social insurance")})
    description = TextAreaField(_l("Details"), id="ask-description", render_kw={"rows": 3})
    # Not checked against the list: the service answers a document the person may not see with 404.
    documents = SelectMultipleField(_l("Attach documents (hold Ctrl or ⌘ to pick several)"), id="ask-documents",
                                    validate_choice=False, render_kw={"size": 4})

    def offer(self, documents: Iterable) -> RequestWorkForm:
        """Offer the person's recent vault documents to attach; returns the form."""
        self.documents.choices = [SelectChoice(str(d.id), d.title) for d in documents]
        return self


class TaskForm(FlaskForm):
    """A manager opens a task; without an assignee it waits in its line's queue."""

    title = StringField(_l("Title"), id="task-title", validators=[DataRequired(), Length(max=200)],
                        render_kw=NOT_BLANK)
    description = TextAreaField(_l("Description"), id="task-description", render_kw={"rows": 3})
    line = SelectField(_l("Service"), id="task-line")
    priority = SelectField(_l("Priority"), id="task-priority", coerce=int, default=3,
                           choices=[SelectChoice(n, label) for n, label in PRIORITIES.items()])
    due = DateField(_l("Due date"), id="task-due", validators=[Optional()])
    assignee = SelectField(_l("Assignee"), id="task-assignee", default="")
    reviewer = SelectField(_l("Reviewer"), id="task-reviewer", default="")

    def offer(self, lines: Iterable[ServiceLine], team: Iterable[User]) -> TaskForm:
        """Offer the service lines and the provider people who may work on the tenant; returns the form."""
        self.line.choices = [SelectChoice(line.key, line.name) for line in lines]
        people = [SelectChoice(str(person.id), person.name) for person in team]
        self.assignee.choices = [SelectChoice("", _l("Nobody: put it in the queue")), *people]
        self.reviewer.choices = [SelectChoice("", _l("Choose later")), *people]
        return self


class WholeNumberField(IntegerField):
    """A whole number; one that is not a number is told so, once (its range is not checked as well)."""

    def pre_validate(self, form: FlaskForm) -> None:
        if self.process_errors:
            raise StopValidation()


class RecurringForm(FlaskForm):
    """A manager adds recurring work: one task per period, opened ahead of its due date by the scheduler."""

    title = StringField(_l("Title"), id="recurring-title", validators=[DataRequired(), Length(max=200)],
                        render_kw={**NOT_BLANK, "placeholder": _l("Monthly close")})
    line = SelectField(_l("Service"), id="recurring-line")
    kind = SelectField(_l("When"), id="recurring-kind", default="working_day", choices=[
        SelectChoice("working_day", _l("N-th working day of the month")),
        SelectChoice("last_working_day", _l("Last working day of the month")),
        SelectChoice("day_of_month", _l("Day N of the month")),
        SelectChoice("weekday", _l("N-th weekday of the month")),
        SelectChoice("quarterly", _l("Last day of the month after each quarter"))])
    number = WholeNumberField(_l("N"), id="recurring-number", default=5,
                              validators=[InputRequired(), NumberRange(min=1, max=31)], render_kw={"min": 1, "max": 31})
    weekday = SelectField(_l("Weekday (for the N-th weekday)"), id="recurring-weekday", coerce=int, default=0,
                          choices=[SelectChoice(n, day) for n, day in enumerate(
                              (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday")))])
    lead_days = WholeNumberField(_l("Open it this many days before it is due"), id="recurring-lead-days",
                                 default=7, validators=[InputRequired(), NumberRange(min=0, max=60)],
                                 render_kw={"min": 0, "max": 60})

    def offer(self, lines: Iterable[ServiceLine]) -> RecurringForm:
        """Offer the service lines; returns the form."""
        self.line.choices = [SelectChoice(line.key, line.name) for line in lines]
        return self

    def rule(self) -> dict:
        """The schedule picked, as a ``Rule`` JSON (the rule itself validates strictly)."""
        kind, number = self.kind.data, self.number.data
        return {"working_day": {"kind": kind, "n": number},
                "last_working_day": {"kind": "working_day", "n": -1},
                "day_of_month": {"kind": kind, "day": number},
                "weekday": {"kind": kind, "n": number, "weekday": self.weekday.data},
                "quarterly": {"kind": kind, "day": -1, "month_offset": 1}}[kind]
