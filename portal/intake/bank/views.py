"""Bank statements on the document's page (a panel), and the form that maps a CSV's columns."""

from __future__ import annotations

from flask import flash, g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal.access import requires
from portal.billing.views import money_in
from portal.documents import panels
from portal.documents.models import Document
from portal.intake import bp
from portal.intake import services as intake
from portal.intake import views as _intake_views  # noqa: F401 - what was read comes first, the statement after it
from portal.intake.bank import parse_csv, services
from portal.intake.bank.forms import FIELD_LABELS, BankMappingForm
from portal.intake.bank.models import BankCsvMapping, BankStatement
from portal.intake.models import IntakeRecord
from tenants.policy import allowed

PREVIEW_ROWS = 5
# Where a CSV that failed is shown the mapping form (the file is fine; the columns were not known or wrong).
MAPPING_REASONS = ("bank_needs_mapping", "bank_date", "bank_amount", "bank_decimals", "bank_currency", "bank_empty")
WHERE = {
    "bank_date": _l("Row %(row)s, column %(column)s (“%(name)s”) does not hold a date written as %(example)s. "
                    "Choose the date column or the date format again."),
    "bank_amount": _l("Row %(row)s, column %(column)s (“%(name)s”) does not hold an amount. Choose the amount "
                      "column or the decimal separator again."),
    "bank_decimals": _l("Row %(row)s, column %(column)s (“%(name)s”) has more decimals than its currency has. "
                        "Check the decimal separator and the currency."),
}


def money(amount: int | None, currency: str) -> str:
    """An amount in the minor unit, in the reader's language ("10.000.000 ₫", "$1,200.50"); "" for none."""
    return "" if amount is None else money_in(amount, currency)


def continuity_sentence(statement: BankStatement) -> str:
    """Whether the statement follows the one before it, in a sentence."""
    before = statement.follows
    if statement.continuity == "gap" and before is not None:
        return _("The opening balance %(opening)s does not follow the previous statement's closing balance "
                 "%(closing)s (statement of %(date)s).", opening=money(statement.opening_balance, statement.currency),
                 closing=money(before.closing_balance, before.currency),
                 date=format_date(before.period_end) if before.period_end else "")
    if statement.continuity == "ok" and before is not None:
        return _("Follows the previous statement (of %(date)s): its opening balance is that statement's closing "
                 "balance.", date=format_date(before.period_end) if before.period_end else "")
    if statement.continuity == "unknown":
        return _("The file gives no balances, so it cannot be checked against the previous statement.")
    return _("The first statement of this account here: there is no earlier one to compare its opening balance "
             "with.")


def failure_sentence(error: str | None, table: parse_csv.Layout | None, date_format: str | None) -> str | None:
    """Where a CSV did not fit its mapping ("Row 12, column 3 (“Số tiền”) does not hold an amount..."), or None."""
    reason, _sep, where = (error or "").partition(":")
    if reason not in WHERE or not where:
        return None
    row, _sep, column = where.partition(":")
    index = int(column) - 1 if column.isdigit() else -1
    name = table.header[index] if table and 0 <= index < len(table.header) else "?"
    return str(WHERE[reason]) % {"row": row, "column": column, "name": name,
                                 "example": parse_csv.DATE_FORMATS.get(date_format or "", date_format or "")}


def _form_for(table: parse_csv.Layout, saved: BankCsvMapping | None) -> BankMappingForm:
    """The mapping form: what was typed after a refusal, else the saved mapping of this layout, else defaults."""
    form = g.get("bank_mapping_form")
    if form is None:
        values: dict = {"bank": "", "date_format": "%d/%m/%Y", "decimal": ".", "currency": "VND"}
        if saved is not None:
            values = {"bank": saved.bank, "date_format": saved.mapping["date_format"],
                      "decimal": saved.mapping["decimal"], "currency": saved.mapping.get("currency") or "",
                      "account": saved.account or ""}
            values.update({f"col_{k}": str(v) for k, v in saved.mapping["columns"].items()})
        form = BankMappingForm(formdata=None, **values)
    form.offer(table.header)
    return form


def _being_read(doc: Document, record: IntakeRecord | None) -> bool:
    """Whether intake is about to read the document's bank file (its bank step is still to run): the panel
    then refreshes itself, so that the transactions appear without a reload (after staff map a CSV's columns,
    the page says they will)."""
    if record is None or record.state not in ("waiting", "running") or "bank" in record.steps:
        return False
    kind = doc.latest.object.kind
    if kind in ("ofx", "mt940") or (kind == "csv" and doc.category == "bank_statement"):
        return True
    table = services.csv_table(doc) if kind == "csv" else None  # another CSV is read when its layout is mapped
    return table is not None and services.mapping_of(table.fingerprint) is not None


def _panel(doc: Document) -> panels.Panel | None:
    if not allowed(g.role, "tenant:intake.view"):
        return None
    record = intake.record_of(doc)
    shown = services.statements_of(doc)
    failed = record is not None and record.state == "failed" and record.step == "bank"
    reading = _being_read(doc, record)
    if not shown and not failed and not reading:
        return None
    context: dict = {"shown": shown, "money": money, "continuity": continuity_sentence, "form": None,
                     "fields": FIELD_LABELS, "where": None, "table": None, "preview": [], "reading": reading}
    reason = (record.error or "").partition(":")[0] if failed else ""
    if failed and reason in MAPPING_REASONS:
        table = services.csv_table(doc)
        if table is not None:
            saved = services.mapping_of(table.fingerprint)
            context.update(table=table, preview=[row for _n, row in table.rows[:PREVIEW_ROWS]],
                           where=failure_sentence(record.error, table, saved.mapping["date_format"] if saved else None))
            if allowed(g.role, "tenant:intake.map"):
                context["form"] = _form_for(table, saved)
    return panels.Panel("intake/_bank.html", context)


panels.register("document", _panel)


@bp.route("/t/<tenant_slug>/documents/<document_id>/intake/bank-mapping", methods=["POST"])
@requires("tenant:intake.map")
def save_mapping(tenant_slug: str, document_id: str) -> ResponseReturnValue:
    """Save which column of this bank's CSV holds what, for the tenant, and read the document again with it."""
    from portal.documents import services as vault
    from portal.documents.views import _detail_page

    actor = current_user._get_current_object()
    doc = vault.get_document(actor, document_id)  # another tenant's or a missing one: 404 before anything
    form = BankMappingForm()
    form.validate()  # the CSRF token; the service checks the rest
    if form.errors.get("csrf_token"):
        flash(_("The form expired: open the page again and send it once more."), "error")
        return redirect(url_for("documents.detail", tenant_slug=tenant_slug, document_id=document_id), 303)
    for posted in form:
        posted.errors = []  # WTForms' own shape checks: the service's sentences take their place
    given = services.MappingInput(
        bank=form.bank.data or "", date_format=form.date_format.data or "", decimal=form.decimal.data or "",
        currency=form.currency.data, account=form.account.data,
        columns={name: int(value) if (value := request.form.get(f"col_{name}", "")).isdigit() else None
                 for name in parse_csv.FIELDS})
    try:
        done = services.map_document(actor, g.tenant, document_id, given, request.remote_addr)
    except services.MappingInvalid as exc:
        for name, message in exc.errors.items():
            column = name.removeprefix("columns.")
            target = form[f"col_{column}"] if column != name else form[name]
            target.errors = [message]
        g.bank_mapping_form = form
        return _detail_page(doc), 422
    if done.reading_again:
        flash(_("The columns of %(bank)s's CSV are saved for this client. Reading “%(title)s” again with them; this "
                "page shows the transactions when it is done.", bank=done.mapping.bank, title=doc.title), "success")
    else:
        flash(_("The columns of %(bank)s's CSV are saved for this client; its next statements are read with them.",
                bank=done.mapping.bank), "success")
    return redirect(url_for("documents.detail", tenant_slug=tenant_slug, document_id=document_id), 303)
