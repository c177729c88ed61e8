"""Forms of the vault pages (CSRF-protected by Flask-WTF; the streamed upload checks its own token)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, FieldList, FormField, SelectField, StringField, TextAreaField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from portal.documents.requests import ItemInput

ITEM_ROWS = 5


def category_choices() -> list[SelectChoice]:
    from portal.documents.views import CATEGORY_LABELS

    return [SelectChoice(value, label) for value, label in CATEGORY_LABELS.items()]


class RefileForm(FlaskForm):
    category = SelectField(_l("Category"), choices=category_choices)
    period = StringField(_l("Month (YYYY-MM)"), validators=[Length(max=7)])
    tags = StringField(_l("Tags, separated by commas"), validators=[Length(max=400)])


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
