"""The books' pages under /t/<tenant_slug>/books: start, chart of accounts, journal, an entry, trial balance,
months. Thin: the rules are in ``services``; each form keeps what was typed and shows every error at once."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from flask import flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import requires
from portal.billing.render import format_money, minor_units
from portal.documents import panels
from portal.documents.models import Document
from portal.extensions import db
from portal.ledger import bp, from_documents, reports, services
from portal.ledger.models import Entry
from tenants.policy import allowed

LINES_SHOWN = 4  # empty lines offered on a new entry (more with "Add a line")


@bp.context_processor
def _helpers() -> dict:
    from portal.documents.views import _helpers as vault_helpers

    currency, locale = _currency(), str(get_locale() or "en")  # once per page, not per figure

    def money(amount: int | None) -> str:
        return "" if amount is None else format_money(int(amount), currency, locale)

    return {**vault_helpers(), "money": money, "locale": locale}


def _currency() -> str:
    """The books' currency (the tenant's, while bookkeeping is off)."""
    if not g.get("tenant"):
        return "VND"
    book = services.book_of(g.tenant)
    return book.currency if book else g.tenant.currency


def _actor():  # noqa: ANN202 - the signed-in User
    return current_user._get_current_object()


def _refused(exc: services.LedgerError) -> None:
    flash(str(exc), "error")


def _document_panel(doc: Document) -> panels.Panel | None:
    """The entries made from a document, and a way to make one from its invoice, once the books are on."""
    if not allowed(g.role, "tenant:ledger.view") or services.book_of(g.tenant) is None:
        return None
    entries = from_documents.entries_of(doc.id)
    may_enter = allowed(g.role, "tenant:ledger.keep") and from_documents.invoice_of(doc) is not None
    if not entries and not may_enter:
        return None
    return panels.Panel("ledger/_document.html", {"entries": entries, "may_enter": may_enter, "document": doc})


panels.register("document", _document_panel)


# --- start and overview ---------------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/books")
@requires("tenant:ledger.view")
def overview(tenant_slug: str) -> ResponseReturnValue:
    """The books: how to start them, or where they are (drafts, last entries, months)."""
    book = services.book_of(g.tenant)
    if book is None:
        return _not_started()
    drafts = db.session.scalars(db.select(Entry).where(Entry.state == "draft").order_by(Entry.entry_date)).all()
    recent = services.latest_entries(10)
    return render_template("ledger/overview.html", tenant=g.tenant, book=book, chart=services.charts()[book.chart],
                           drafts=drafts, recent=recent)


def _not_started() -> str:
    """Any page of the books while bookkeeping is off: how to switch it on (or that the provider will)."""
    return render_template("ledger/start.html", tenant=g.tenant, charts=services.charts(), typed={}, errors={})


@bp.route("/t/<tenant_slug>/books/start", methods=["POST"])
@requires("tenant:ledger.setup")
def start(tenant_slug: str) -> ResponseReturnValue:
    typed = {k: request.form.get(k, "") for k in ("chart", "fiscal_year_start", "tax_code")}
    try:
        month = int(typed["fiscal_year_start"] or 1)
        services.start_books(_actor(), g.tenant, typed["chart"], fiscal_year_start=month, tax_code=typed["tax_code"],
                             ip=request.remote_addr)
    except (ValueError, services.LedgerError) as exc:
        errors = getattr(exc, "errors", {})
        flash(str(exc) if isinstance(exc, services.LedgerError) else _("The fiscal year starts in a month, 1 to 12."),
              "error")
        return render_template("ledger/start.html", tenant=g.tenant, charts=services.charts(), typed=typed,
                               errors=errors), 422
    flash(_("Bookkeeping is on: the chart of accounts is ready. Add sub-accounts as the client needs them."),
          "success")
    return redirect(url_for("ledger.overview", tenant_slug=tenant_slug), 303)


# --- the chart ------------------------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/books/accounts")
@requires("tenant:ledger.view")
def chart(tenant_slug: str) -> ResponseReturnValue:
    return _chart_page({}, {})


def _chart_page(typed: dict, errors: dict, status: int = 200) -> ResponseReturnValue:
    book = services.book_of(g.tenant)
    if book is None:
        return _not_started()
    accounts = services.accounts()
    used = services.used_accounts()
    parents = {a.parent_id for a in accounts if a.parent_id}
    return render_template("ledger/chart.html", tenant=g.tenant, book=book, accounts=accounts, used=used,
                           headings=parents, typed=typed, errors=errors), status


@bp.route("/t/<tenant_slug>/books/accounts", methods=["POST"])
@requires("tenant:ledger.keep")
def add_account(tenant_slug: str) -> ResponseReturnValue:
    typed = {k: request.form.get(k, "") for k in ("parent", "code", "name_vi", "name_en")}
    try:
        account = services.add_account(_actor(), g.tenant, typed["parent"], typed["code"], typed["name_vi"],
                                       typed["name_en"], ip=request.remote_addr)
    except services.LedgerError as exc:
        _refused(exc)
        return _chart_page(typed, exc.errors, 422)
    flash(_("Account %(code)s added under %(parent)s.", code=account.code, parent=typed["parent"]), "success")
    return redirect(url_for("ledger.chart", tenant_slug=tenant_slug, _anchor=f"a-{account.code}"), 303)


@bp.route("/t/<tenant_slug>/books/accounts/<code>/active", methods=["POST"])
@requires("tenant:ledger.keep")
def account_active(tenant_slug: str, code: str) -> ResponseReturnValue:
    active = request.form.get("active") == "1"
    try:
        services.set_account_active(_actor(), g.tenant, code, active, ip=request.remote_addr)
    except services.LedgerError as exc:
        _refused(exc)
    else:
        flash(_("%(code)s is active again.", code=code) if active else
              _("%(code)s is deactivated: it stays in the reports and takes no new lines.", code=code), "success")
    return redirect(url_for("ledger.chart", tenant_slug=tenant_slug, _anchor=f"a-{code}"), 303)


@bp.route("/t/<tenant_slug>/books/accounts/<code>/name", methods=["GET", "POST"])
@requires("tenant:ledger.keep")
def rename_account(tenant_slug: str, code: str) -> ResponseReturnValue:
    """Rename an account: a small form with both names, kept as typed when something is wrong."""
    from flask import abort

    account = services.account_by_code(code)
    if account is None:
        abort(404)
    typed = {"name_vi": account.name_vi, "name_en": account.name_en}
    errors: dict = {}
    if request.method == "POST":
        typed = {k: request.form.get(k, "") for k in ("name_vi", "name_en")}
        try:
            services.rename_account(_actor(), g.tenant, code, typed["name_vi"], typed["name_en"],
                                    ip=request.remote_addr)
        except services.LedgerError as exc:
            _refused(exc)
            errors = exc.errors
        else:
            flash(_("Account %(code)s is now called “%(name)s”.", code=code, name=typed["name_vi"].strip()),
                  "success")
            return redirect(url_for("ledger.chart", tenant_slug=tenant_slug, _anchor=f"a-{code}"), 303)
    return render_template("ledger/account_name.html", tenant=g.tenant, account=account, typed=typed,
                           errors=errors), 422 if errors else 200


@bp.route("/t/<tenant_slug>/books/accounts/<code>/delete", methods=["POST"])
@requires("tenant:ledger.keep")
def delete_account(tenant_slug: str, code: str) -> ResponseReturnValue:
    try:
        services.delete_account(_actor(), g.tenant, code, ip=request.remote_addr)
    except services.LedgerError as exc:
        _refused(exc)
    else:
        flash(_("Account %(code)s deleted.", code=code), "success")
    return redirect(url_for("ledger.chart", tenant_slug=tenant_slug), 303)


# --- entries --------------------------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/books/entries")
@requires("tenant:ledger.view")
def journal(tenant_slug: str) -> ResponseReturnValue:
    """Posted entries, newest first, and the drafts."""
    if services.book_of(g.tenant) is None:
        return _not_started()
    return render_template("ledger/journal.html", tenant=g.tenant, entries=services.journal(200))


def _parse_lines(form: dict, currency: str) -> tuple[list[services.LineInput], dict, list[dict]]:
    """The lines typed on the entry form (empty rows skipped), their errors, and the rows as typed."""
    lines, errors, rows = [], {}, []
    count = min(int(form.get("line_count") or LINES_SHOWN), 60)
    places = minor_units(currency)
    for i in range(1, count + 1):
        row = {k: (form.get(f"line-{i}-{k}") or "").strip()
               for k in ("account", "debit", "credit", "description", "counterparty", "tax_code")}
        rows.append(row)
        if not any(row[k] for k in ("account", "debit", "credit", "description")):
            continue
        n = len(lines) + 1
        amounts = {}
        for side in ("debit", "credit"):
            raw = row[side].replace(" ", "").replace(",", "")
            try:
                value = Decimal(raw) if raw else Decimal(0)
                scaled = value.scaleb(places)
                if scaled != scaled.to_integral_value() or value < 0:
                    raise InvalidOperation
                amounts[side] = int(scaled)
            except InvalidOperation:
                errors[f"line-{n}-amount"] = _("Write the amount in figures, without more decimals than the currency "
                                               "has (for example 1100000).")
                amounts[side] = 0
        lines.append(services.LineInput(row["account"], amounts["debit"], amounts["credit"], row["description"],
                                        row["counterparty"] or None, row["tax_code"][:10] or None))
    return lines, errors, rows


def _entry_page(entry: Entry | None, typed: dict | None = None, errors: dict | None = None,
                status: int = 200, document: Document | None = None) -> ResponseReturnValue:
    book = services.book_of(g.tenant)
    accounts = services.postable(services.accounts(active_only=True))
    if document is None and (entry is not None and entry.document_id or (typed or {}).get("document_id")):
        document = _document(str(entry.document_id) if entry is not None and entry.document_id
                             else typed["document_id"])
    return render_template("ledger/entry.html", tenant=g.tenant, book=book, entry=entry, accounts=accounts,
                           typed=typed, errors=errors or {}, lines_shown=LINES_SHOWN, document=document,
                           may_keep=allowed(g.role, "tenant:ledger.keep"), today=date.today()), status


def _document(document_id: str) -> Document:
    """A document the signed-in person may see (else 404, the same for another tenant's)."""
    from portal.documents import services as vault

    return vault.get_document(_actor(), document_id)


def _prefilled(document: Document) -> dict:
    """The form as the document's invoice fills it (``from_documents.prefill``), or {} when it has none."""
    suggested = from_documents.prefill(g.tenant, document)
    if suggested is None:
        return {}
    book = services.book_of(g.tenant)
    scale = minor_units(book.currency)
    typed = {"entry_date": suggested.entry_date.isoformat(), "memo": suggested.memo, "document_id": str(document.id),
             "due_date": suggested.due_date.isoformat() if suggested.due_date else "",
             "line_count": str(max(LINES_SHOWN, len(suggested.lines)))}
    for i, line in enumerate(suggested.lines, start=1):
        typed.update({f"line-{i}-account": line.account, f"line-{i}-description": line.description or "",
                      f"line-{i}-counterparty": line.counterparty or "", f"line-{i}-tax_code": line.tax_code or "",
                      f"line-{i}-debit": _figures(line.debit, scale), f"line-{i}-credit": _figures(line.credit, scale)})
    return typed


def _figures(amount: int, scale: int) -> str:
    return "" if not amount else f"{Decimal(amount).scaleb(-scale):f}"


@bp.route("/t/<tenant_slug>/books/entries/new")
@requires("tenant:ledger.keep")
def new_entry(tenant_slug: str) -> ResponseReturnValue:
    if services.book_of(g.tenant) is None:
        return _not_started()
    if request.args.get("document"):  # from an invoice intake read: the lines it suggests
        document = _document(request.args["document"])
        return _entry_page(None, _prefilled(document) or None, document=document)
    return _entry_page(None)


@bp.route("/t/<tenant_slug>/books/entries/<entry_id>")
@requires("tenant:ledger.view")
def entry_detail(tenant_slug: str, entry_id: str) -> ResponseReturnValue:
    return _entry_page(services.get_entry(entry_id))


@bp.route("/t/<tenant_slug>/books/entries", methods=["POST"])
@requires("tenant:ledger.keep")
def create_entry(tenant_slug: str) -> ResponseReturnValue:
    """A new entry: saved as a draft (``then=save``), or saved and posted (``then=post``)."""
    return _save(tenant_slug, None)


@bp.route("/t/<tenant_slug>/books/entries/<entry_id>/save", methods=["POST"])
@requires("tenant:ledger.keep")
def save_entry(tenant_slug: str, entry_id: str) -> ResponseReturnValue:
    """A draft changed: saved again, or saved and posted."""
    return _save(tenant_slug, services.get_entry(entry_id))


def _save(tenant_slug: str, entry: Entry | None) -> ResponseReturnValue:
    """Save a draft (``then=save``), or save and post it (``then=post``), or offer one more line."""
    entry_id = str(entry.id) if entry else None
    book = services.book_of(g.tenant)
    form = request.form.to_dict()
    if form.get("then") == "add_line":
        form["line_count"] = str(int(form.get("line_count") or LINES_SHOWN) + 1)
        return _entry_page(entry, form, {})
    lines, errors, _rows = _parse_lines(form, book.currency if book else g.tenant.currency)
    try:
        when = date.fromisoformat(form.get("entry_date", ""))
    except ValueError:
        errors["entry_date"] = _("Give the entry's date.")
        when = None
    due = None
    if form.get("due_date"):
        try:
            due = date.fromisoformat(form["due_date"])
        except ValueError:
            errors["due_date"] = _("Give the due date as a date, or leave it empty.")
    if errors:
        flash(_("The entry was not saved: correct the fields marked."), "error")
        return _entry_page(entry, form, errors, 422)
    document = _document(form["document_id"]) if form.get("document_id") else None
    try:
        saved = services.save_draft(_actor(), g.tenant, when, lines, memo=form.get("memo"), entry_id=entry_id,
                                    document_id=document.id if document else None,
                                    source="invoice" if document else "manual", due_date=due,
                                    post_it=form.get("then") == "post",
                                    override=form.get("override") == "1", ip=request.remote_addr)
    except services.NotPosted as exc:  # kept as a draft: the form now saves that draft, not a second one
        flash(_("%(why)s It is kept as a draft.", why=str(exc)), "error")
        return _entry_page(services.get_entry(exc.entry.id), form, exc.errors, 422)
    except services.LedgerError as exc:
        _refused(exc)
        return _entry_page(entry, form, exc.errors, 422)
    if saved.state == "posted":
        flash(_("Entry %(number)s posted: %(total)s.", number=saved.number, total=_money(saved.total)), "success")
    else:
        flash(_("Draft saved. It is not in the books until it is posted."), "success")
    return redirect(url_for("ledger.entry_detail", tenant_slug=tenant_slug, entry_id=saved.id), 303)


def _money(amount: int) -> str:
    return format_money(amount, _currency(), str(get_locale() or "en"))


@bp.route("/t/<tenant_slug>/books/entries/<entry_id>/post", methods=["POST"])
@requires("tenant:ledger.keep")
def post_entry(tenant_slug: str, entry_id: str) -> ResponseReturnValue:
    try:
        entry = services.post(_actor(), g.tenant, entry_id, ip=request.remote_addr)
    except services.LedgerError as exc:
        _refused(exc)
    else:
        flash(_("Entry %(number)s posted: %(total)s.", number=entry.number, total=_money(entry.total)), "success")
    return redirect(url_for("ledger.entry_detail", tenant_slug=tenant_slug, entry_id=entry_id), 303)


@bp.route("/t/<tenant_slug>/books/entries/<entry_id>/reverse", methods=["POST"])
@requires("tenant:ledger.keep")
def reverse_entry(tenant_slug: str, entry_id: str) -> ResponseReturnValue:
    try:
        on = date.fromisoformat(request.form.get("on") or date.today().isoformat())
        reversal = services.reverse(_actor(), g.tenant, entry_id, on, ip=request.remote_addr)
    except ValueError:
        flash(_("Give the date of the reversal."), "error")
    except services.LedgerError as exc:
        _refused(exc)
    else:
        flash(_("Reversed by entry %(number)s.", number=reversal.number), "success")
        return redirect(url_for("ledger.entry_detail", tenant_slug=tenant_slug, entry_id=reversal.id), 303)
    return redirect(url_for("ledger.entry_detail", tenant_slug=tenant_slug, entry_id=entry_id), 303)


@bp.route("/t/<tenant_slug>/books/entries/<entry_id>/delete", methods=["POST"])
@requires("tenant:ledger.keep")
def delete_entry(tenant_slug: str, entry_id: str) -> ResponseReturnValue:
    try:
        services.delete_draft(_actor(), g.tenant, entry_id, ip=request.remote_addr)
    except services.LedgerError as exc:
        _refused(exc)
        return redirect(url_for("ledger.entry_detail", tenant_slug=tenant_slug, entry_id=entry_id), 303)
    flash(_("Draft deleted."), "success")
    return redirect(url_for("ledger.journal", tenant_slug=tenant_slug), 303)


# --- reports and months ---------------------------------------------------------------------------------

def _date_arg(name: str, default: date | None) -> date | None:
    try:
        return date.fromisoformat(request.args[name]) if request.args.get(name) else default
    except ValueError:
        return default


@bp.route("/t/<tenant_slug>/books/trial-balance")
@requires("tenant:ledger.view")
def trial_balance(tenant_slug: str) -> ResponseReturnValue:
    """Each account's debits, credits and balance over the dates asked for (the year to date by default)."""
    if services.book_of(g.tenant) is None:
        return _not_started()
    today = date.today()
    until = _date_arg("until", today)
    since = _date_arg("since", date(until.year, 1, 1))
    rows = reports.trial_balance(until, since=since)
    return render_template("ledger/trial_balance.html", tenant=g.tenant, rows=rows, since=since, until=until,
                           debits=sum(r.debit for r in rows), credits=sum(r.credit for r in rows))


@bp.route("/t/<tenant_slug>/books/profit-and-loss")
@requires("tenant:ledger.view")
def profit_and_loss(tenant_slug: str) -> ResponseReturnValue:
    """Revenue, expenses and the result over the dates asked for (the year to date by default)."""
    if services.book_of(g.tenant) is None:
        return _not_started()
    until = _date_arg("until", date.today())
    since = _date_arg("since", date(until.year, 1, 1))
    statement = reports.profit_and_loss(until, since=since)
    return render_template("ledger/profit_and_loss.html", tenant=g.tenant, statement=statement, since=since,
                           until=until, result=reports.result(statement))


@bp.route("/t/<tenant_slug>/books/carry-result", methods=["POST"])
@requires("tenant:ledger.keep")
def carry_result(tenant_slug: str) -> ResponseReturnValue:
    """Carry the result of the dates on the profit and loss page to retained earnings (one posted entry)."""
    since, until = _date_arg("since", None), _date_arg("until", None)
    back = url_for("ledger.profit_and_loss", tenant_slug=tenant_slug, since=since, until=until)
    if since is None or until is None:
        flash(_("Give the first and the last day of the period whose result is carried."), "error")
        return redirect(back, 303)
    try:
        entry = services.carry_result(_actor(), g.tenant, since, until, ip=request.remote_addr)
    except services.LedgerError as exc:
        _refused(exc)
        return redirect(back, 303)
    flash(_("Entry %(number)s posted: the result is carried to retained earnings.", number=entry.number), "success")
    return redirect(url_for("ledger.entry_detail", tenant_slug=tenant_slug, entry_id=entry.id), 303)


@bp.route("/t/<tenant_slug>/books/balance-sheet")
@requires("tenant:ledger.view")
def balance_sheet(tenant_slug: str) -> ResponseReturnValue:
    """Assets, liabilities and equity on a day (today by default), with the result not yet closed."""
    if services.book_of(g.tenant) is None:
        return _not_started()
    on = _date_arg("on", date.today())
    sheet, unclosed = reports.balance_sheet(on)
    return render_template("ledger/balance_sheet.html", tenant=g.tenant, sheet=sheet, unclosed=unclosed, on=on)


@bp.route("/t/<tenant_slug>/books/accounts/<code>")
@requires("tenant:ledger.view")
def account_ledger(tenant_slug: str, code: str) -> ResponseReturnValue:
    """One account's ledger: its opening balance and every posted line with a running balance (the trial
    balance's figures open here; each line opens its entry and its document)."""
    from flask import abort

    if services.book_of(g.tenant) is None:
        return _not_started()
    account = services.account_by_code(code)
    if account is None:
        abort(404)
    until = _date_arg("until", date.today())
    since = _date_arg("since", date(until.year, 1, 1))
    opening, lines = reports.general_ledger(account, until, since=since)
    return render_template("ledger/account.html", tenant=g.tenant, account=account, opening=opening, lines=lines,
                           since=since, until=until, closing=lines[-1].balance if lines else opening)


@bp.route("/t/<tenant_slug>/books/vat")
@requires("tenant:ledger.view")
def vat(tenant_slug: str) -> ResponseReturnValue:
    """VAT per rate over the dates: on sales, on purchases, and what is due; then per month (or quarter)."""
    if services.book_of(g.tenant) is None:
        return _not_started()
    until = _date_arg("until", date.today())
    since = _date_arg("since", date(until.year, until.month, 1))
    per = "quarter" if request.args.get("per") == "quarter" else "month"
    output, inputs = reports.vat_accounts(g.tenant)
    rows = reports.vat_summary(until, since=since, output_code=output, input_codes=inputs) if output else []
    periods = reports.vat_by_period(until, since=since, output_code=output, input_codes=inputs,
                                    per=per) if output else []
    return render_template("ledger/vat.html", tenant=g.tenant, rows=rows, since=since, until=until,
                           due=sum(r.due for r in rows), periods=periods, per=per)


@bp.route("/t/<tenant_slug>/books/export.<fmt>")
@requires("tenant:ledger.view")
def export(tenant_slug: str, fmt: str) -> ResponseReturnValue:
    """The whole ledger as a CSV journal or a Beancount file (in the access log)."""
    from flask import abort, make_response

    from portal.ledger import export as exports
    from tenants import audit

    book = services.book_of(g.tenant)
    if book is None or fmt not in ("csv", "beancount"):
        abort(404)
    body = exports.journal_csv(book.currency) if fmt == "csv" else exports.beancount(book.currency).encode()
    audit.record("ledger.exported", audit.Actor.of(_actor()), tenant_id=g.tenant.id, ip=request.remote_addr,
                 data={"format": fmt})
    db.session.commit()
    response = make_response(body)
    response.headers["Content-Type"] = "text/csv; charset=utf-8" if fmt == "csv" else "text/plain; charset=utf-8"
    response.headers.set("Content-Disposition", "attachment", filename=f"{g.tenant.slug}-books.{fmt}")
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/t/<tenant_slug>/books/months")
@requires("tenant:ledger.view")
def months(tenant_slug: str) -> ResponseReturnValue:
    if services.book_of(g.tenant) is None:
        return _not_started()
    return render_template("ledger/months.html", tenant=g.tenant, months=services.months_shown(),
                           reviewers=_reviewers())


def _reviewers() -> list:
    """Who may review a month's closing: the provider's people on this client, but the one signed in."""
    from sqlalchemy import select

    from tenants.models import Assignment, User

    people = db.session.scalars(select(User).join(Assignment, Assignment.user_id == User.id)
                                .where(User.is_active.is_(True), User.id != _actor().id).order_by(User.name)).all()
    return list(people)


@bp.route("/t/<tenant_slug>/books/months/<month>/close", methods=["POST"])
@requires("tenant:ledger.close")
def close_month(tenant_slug: str, month: str) -> ResponseReturnValue:
    from portal.ledger import closing

    try:
        closing.start(_actor(), g.tenant, _month(month), request.form.get("reviewer", ""), ip=request.remote_addr)
    except services.LedgerError as exc:
        _refused(exc)
    else:
        flash(_("%(month)s is in review: its report is the closing task's work product. Once a second person has "
                "reviewed it and the client has approved it, the month closes.",
                month=_month(month).strftime("%m/%Y")), "success")
    return redirect(url_for("ledger.months", tenant_slug=tenant_slug), 303)


@bp.route("/t/<tenant_slug>/books/months/<month>/reopen", methods=["POST"])
@requires("tenant:ledger.reopen")
def reopen_month(tenant_slug: str, month: str) -> ResponseReturnValue:
    try:
        services.reopen_month(_actor(), g.tenant, _month(month), request.form.get("reason", ""),
                              ip=request.remote_addr)
    except services.LedgerError as exc:
        _refused(exc)
    else:
        flash(_("%(month)s is open again; the reason is in the access log.", month=_month(month).strftime("%m/%Y")),
              "success")
    return redirect(url_for("ledger.months", tenant_slug=tenant_slug), 303)


def _month(raw: str) -> date:
    from flask import abort

    try:
        return date.fromisoformat(f"{raw}-01")
    except ValueError:
        abort(404)
