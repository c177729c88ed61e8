"""The form that tells which column of a bank's CSV export holds what (CSRF-protected by Flask-WTF).

The choices of the column fields are the file's own columns, set when the form is built for a file; the
service (``services.build_mapping``) checks everything and says every problem at once.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.fields import SelectChoice

from portal.intake.bank.parse_csv import DATE_FORMATS

# The form's label of each field a column may hold (``parse_csv.FIELDS``).
FIELD_LABELS = {
    "date": _l("Date of the transaction"),
    "value_date": _l("Value date"),
    "amount": _l("Amount (money out is negative)"),
    "debit": _l("Debit (money out)"),
    "credit": _l("Credit (money in)"),
    "currency": _l("Currency"),
    "counterparty": _l("Counterparty's name"),
    "counterparty_account": _l("Counterparty's account"),
    "reference": _l("Description or reference"),
    "balance": _l("Balance after the transaction"),
}


class BankMappingForm(FlaskForm):
    bank = StringField(_l("Bank"))
    date_format = SelectField(_l("Dates are written as"), validate_choice=False,
                              choices=[SelectChoice(k, v) for k, v in DATE_FORMATS.items()])
    decimal = SelectField(_l("Decimal separator"), validate_choice=False,
                          choices=[SelectChoice(".", _l("a point: 1,234,567.50")),
                                   SelectChoice(",", _l("a comma: 1.234.567,50"))])
    currency = StringField(_l("Currency, when no column holds it"), default="VND")
    account = StringField(_l("Account number, when the file does not say (optional)"))
    col_date = SelectField(FIELD_LABELS["date"], validate_choice=False)
    col_value_date = SelectField(FIELD_LABELS["value_date"], validate_choice=False)
    col_amount = SelectField(FIELD_LABELS["amount"], validate_choice=False)
    col_debit = SelectField(FIELD_LABELS["debit"], validate_choice=False)
    col_credit = SelectField(FIELD_LABELS["credit"], validate_choice=False)
    col_currency = SelectField(FIELD_LABELS["currency"], validate_choice=False)
    col_counterparty = SelectField(FIELD_LABELS["counterparty"], validate_choice=False)
    col_counterparty_account = SelectField(FIELD_LABELS["counterparty_account"], validate_choice=False)
    col_reference = SelectField(FIELD_LABELS["reference"], validate_choice=False)
    col_balance = SelectField(FIELD_LABELS["balance"], validate_choice=False)

    def column_fields(self) -> list:
        """The column selects, in the order of ``parse_csv.FIELDS``."""
        return [self[f"col_{name}"] for name in FIELD_LABELS]

    def offer(self, header: list[str]) -> None:
        """Offer the file's columns ("3. Số tiền") in every column select, and "not in the file"."""
        choices = [SelectChoice("", _l("— not in the file —"))] + [SelectChoice(str(i), f"{i + 1}. {name}")
                                                                     for i, name in enumerate(header)]
        for select in self.column_fields():
            select.choices = choices
