"""Forms of the vault pages (CSRF-protected by Flask-WTF; the streamed upload checks its own token)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, FieldList, FormField, SelectField, StringField, TextAreaField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from portal.documents.content import CATEGORY_LABELS
from portal.documents.requests import ItemInput

ITEM_ROWS = 5


def category_choices() -> list[SelectChoice]:
    return [SelectChoice(value, _l(label)) for value, label in CATEGORY_LABELS.items()]


class RefileForm(FlaskForm):
    title = StringField(_l("Title"), validators=[
        DataRequired(message=_l("Give the document a title: spaces alone are not a title.")),
        Length(max=200, message=_l("A document's title can be at most 200 characters."))])
    category = SelectField(_l("Category"), choices=category_choices)
    period = StringField(_l("Month (YYYY-MM)"), validators=[Length(max=7)])
    tags = StringField(_l("Tags, separated by commas"), validators=[Length(max=400)])


class TrashForm(FlaskForm):
    reason = TextAreaField(_l("Why is it removed?"), validators=[
        DataRequired(message=_l("Say why this document is removed: your provider and your colleagues read it.")),
        Length(max=300, message=_l("Keep the reason to at most 300 characters."))])


class ConfirmForm(FlaskForm):
    """A button that changes something (restore, reopen): the CSRF token only."""


class NotApplicableForm(FlaskForm):
    """One request item answered "we don't have this / not applicable" (prefixed by the item's id on the page)."""

    reason = TextAreaField(_l("Why don't you have it?"), validators=[
        DataRequired(message=_l("Say why you don't have this document: your provider reads it.")),
        Length(max=300, message=_l("Keep the reason to at most 300 characters."))])


class ItemForm(FlaskForm):
    class Meta:
        csrf = False  # part of RequestForm, which carries the token

    description = StringField(_l("Document needed"), validators=[Length(max=300)])
    category = SelectField(_l("Category"), choices=category_choices, default="other")
    due = DateField(_l("Due date"), validators=[Optional()])


class RequestForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    note = TextAreaField(_l("Note to the client (optional)"), validators=[Length(max=2000)])
    items = FieldList(FormField(ItemForm), min_entries=ITEM_ROWS, max_entries=30)

    def item_inputs(self) -> list[ItemInput]:
        """The filled-in rows (empty rows are ignored)."""
        rows = [entry.form for entry in self.items]
        return [ItemInput(row.description.data or "", row.category.data or "other",
                          row.due.data.isoformat() if row.due.data else None)
                for row in rows if (row.description.data or "").strip()]
