"""Bank reconciliation pages under /t/<tenant_slug>/books/bank: the bank accounts and their links, a linked
account's workspace (unmatched transactions with their best suggestion, one click to accept), a transaction
matched by hand, the rules staff save (with a preview before they post), and the reconciliation report.

Thin: the rules are in ``reconcile`` (and its engine, ``reconcile_rules``). Reconciling is
``tenant:ledger.keep``; the bank accounts' list and the report are ``tenant:ledger.view`` (the client reads them).
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal, InvalidOperation

from flask import flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from portal.access import requires
from portal.billing.render import minor_units
from portal.ledger import bp, reconcile, services
from portal.ledger.models import BankLink
from portal.ledger.services import LedgerError
from tenants.policy import allowed


def _actor():  # noqa: ANN202 - the signed-in User
    return current_user._get_current_object()


def _not_started() -> str:
    return render_template("ledger/start.html", tenant=g.tenant, charts=services.charts(), typed={}, errors={})


def _amount(raw: str, currency: str) -> int | None:
    """An amount typed in figures ("1,500,000" or "1500000.50" for cents) in the minor unit; None if it is not
    one."""
    text = (raw or "").replace(" ", "").replace(",", "")
    try:
        value = Decimal(text).scaleb(minor_units(currency))
    except InvalidOperation:
        return None
    return int(value) if value == value.to_integral_value() and value >= 0 else None


# --- bank accounts --------------------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/books/bank")
@requires("tenant:ledger.view")
def bank_accounts(tenant_slug: str) -> ResponseReturnValue:
    """The bank accounts read from the client's statements, each linked to its ledger account (or a form to)."""
    return _accounts_page({}, {})


def _accounts_page(typed: dict, errors: dict, status: int = 200) -> ResponseReturnValue:
    if services.book_of(g.tenant) is None:
        return _not_started()
    seen = reconcile.seen_accounts()
    progress = {s.link.id: reconcile.progress(s.link) for s in seen if s.link is not None}
    may_keep = allowed(g.role, "tenant:ledger.keep")
    return render_template("ledger/reconcile_accounts.html", tenant=g.tenant, seen=seen, progress=progress,
                           accounts=reconcile.ledger_accounts(g.tenant) if may_keep else [],
                           book=services.book_of(g.tenant), typed=typed, errors=errors, may_keep=may_keep), status


@bp.route("/t/<tenant_slug>/books/bank/link", methods=["POST"])
@requires("tenant:ledger.keep")
def link_bank_account(tenant_slug: str) -> ResponseReturnValue:
    typed = {k: request.form.get(k, "") for k in ("bank_account", "account")}
    try:
        link = reconcile.link_account(_actor(), g.tenant, typed["bank_account"], typed["account"],
                                      ip=request.remote_addr)
    except LedgerError as exc:
        flash(str(exc), "error")
        return _accounts_page(typed, exc.errors, 422)
    flash(_("%(bank)s %(mask)s is kept on %(code)s: its transactions can be reconciled now.", bank=link.bank or "",
            mask=link.account_mask or "", code=link.account.code), "success")
    return redirect(url_for("ledger.bank_workspace", tenant_slug=tenant_slug, link_id=link.id), 303)


# --- the workspace --------------------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/books/bank/<link_id>")
@requires("tenant:ledger.keep")
def bank_workspace(tenant_slug: str, link_id: str) -> ResponseReturnValue:
    """A linked account's unmatched transactions, oldest first, each with its best suggestion."""
    link = reconcile.get_link(link_id)
    txns = reconcile.unmatched(link)
    suggested = reconcile.suggestions(g.tenant, link, txns)
    by_id = {t.id: t for t in txns}
    return render_template("ledger/reconcile_workspace.html", tenant=g.tenant, link=link,
                           progress=reconcile.progress(link), rows=[(by_id[s.txn.id], s) for s in suggested],
                           shown=reconcile.SHOWN, rules={r.id: r for r in reconcile.rules()},
                           recent=reconcile.recent_matches(link))


@bp.route("/t/<tenant_slug>/books/bank/transactions/<transaction_id>")
@requires("tenant:ledger.keep")
def bank_transaction(tenant_slug: str, transaction_id: str) -> ResponseReturnValue:
    """One transaction: every candidate with its reasons, and the forms to match it by hand."""
    return _transaction_page(transaction_id, {}, {})


def _transaction_page(transaction_id: str, typed: dict, errors: dict, status: int = 200) -> ResponseReturnValue:
    txn, statement, link = reconcile.get_transaction(transaction_id)
    match = reconcile.match_of(txn)
    suggested = reconcile.suggestions(g.tenant, link, [txn])[0] if match is None else None
    invoices = reconcile.open_invoices(g.tenant)[reconcile.as_txn(txn).kind]
    entries = [e for e in reconcile.book_entries(link) if e.amount == txn.amount]
    accounts = [a for a in services.postable(services.accounts(active_only=True)) if a.id != link.account_id]
    return render_template("ledger/reconcile_transaction.html", tenant=g.tenant, txn=txn, statement=statement,
                           link=link, match=match, suggested=suggested, invoices=invoices, entries=entries,
                           accounts=accounts, rules={r.id: r for r in reconcile.rules()}, typed=typed,
                           errors=errors), status


def _back(link: BankLink | None, transaction_id: str) -> ResponseReturnValue:
    if request.form.get("back") == "transaction" or link is None:
        return redirect(url_for("ledger.bank_transaction", tenant_slug=g.tenant.slug, transaction_id=transaction_id),
                        303)
    return redirect(url_for("ledger.bank_workspace", tenant_slug=g.tenant.slug, link_id=link.id), 303)


def _said(done: reconcile.Reconciled) -> None:
    entry = done.match.entry
    if done.created:
        flash(_("Reconciled: entry %(number)s.", number=entry.number) if done.match.kind != "entry" else
              _("Reconciled with entry %(number)s, already in the books.", number=entry.number), "success")
    else:
        flash(_("This transaction was reconciled already (entry %(number)s): nothing was posted again.",
                number=entry.number), "info")


@bp.route("/t/<tenant_slug>/books/bank/transactions/<transaction_id>/accept", methods=["POST"])
@requires("tenant:ledger.keep")
def bank_accept(tenant_slug: str, transaction_id: str) -> ResponseReturnValue:
    """Accept a suggestion in one click (a double click posts once)."""
    _txn, _statement, link = reconcile.get_transaction(transaction_id)
    try:
        done = reconcile.accept(_actor(), g.tenant, transaction_id, request.form.get("suggestion", ""),
                                ip=request.remote_addr)
    except LedgerError as exc:
        flash(" ".join([str(exc), *exc.errors.values()]), "error")
        return _back(None, transaction_id)
    _said(done)
    return _back(link, transaction_id)


@bp.route("/t/<tenant_slug>/books/bank/transactions/<transaction_id>/match", methods=["POST"])
@requires("tenant:ledger.keep")
def bank_match_by_hand(tenant_slug: str, transaction_id: str) -> ResponseReturnValue:
    """Match by hand: invoices with the amount each settles, an entry already in the books, or an account."""
    txn, _statement, link = reconcile.get_transaction(transaction_id)
    form = request.form.to_dict()
    how = form.get("how")
    try:
        if how == "items":
            allocations, errors = {}, {}
            for name, raw in form.items():
                if not name.startswith("item-") or not raw.strip():
                    continue
                amount = _amount(raw, txn.currency)
                if amount is None:
                    errors[name] = _("Write the amount in figures (for example 1500000).")
                    continue
                try:
                    line_id = uuid.UUID(name.removeprefix("item-"))
                except ValueError:
                    continue
                if amount:
                    allocations[line_id] = amount
            if not allocations and not errors:
                errors["total"] = _("Type the amount this transaction settles on one invoice or more.")
            if errors:
                raise LedgerError(_("Nothing was posted: correct the amounts marked."), errors)
            done = reconcile.reconcile_items(_actor(), g.tenant, transaction_id, allocations, ip=request.remote_addr)
        elif how == "entry":
            if not form.get("entry_id"):
                raise LedgerError(_("Choose the entry."), {"entry_id": _("Choose the entry.")})
            done = reconcile.reconcile_entry(_actor(), g.tenant, transaction_id, form["entry_id"],
                                             ip=request.remote_addr)
        elif how == "account":
            done = reconcile.reconcile_to_account(_actor(), g.tenant, transaction_id, form.get("account", ""),
                                                  form.get("description", ""), ip=request.remote_addr)
        else:
            raise LedgerError(_("Choose how to match the transaction."))
    except LedgerError as exc:
        flash(str(exc), "error")
        return _transaction_page(transaction_id, form, {f"{how}:{k}": v for k, v in exc.errors.items()}, 422)
    _said(done)
    return redirect(url_for("ledger.bank_workspace", tenant_slug=tenant_slug, link_id=link.id), 303)


@bp.route("/t/<tenant_slug>/books/bank/matches/<match_id>/undo", methods=["POST"])
@requires("tenant:ledger.keep")
def bank_undo(tenant_slug: str, match_id: str) -> ResponseReturnValue:
    """Undo a match: the payment entry is reversed (both stay in the books) and the transaction is open again."""
    match = reconcile.get_match(match_id)
    link_id = match.link_id
    try:
        undone = reconcile.undo(_actor(), g.tenant, match_id, ip=request.remote_addr)
    except LedgerError as exc:
        flash(str(exc), "error")
    else:
        flash(_("The match is undone: entry %(number)s is reversed by entry %(reversal)s.", number=undone.entry.number,
                reversal=undone.reversal.number) if undone.reversal_id else
              _("The match is undone; entry %(number)s stays in the books.", number=undone.entry.number), "success")
    return redirect(url_for("ledger.bank_workspace", tenant_slug=tenant_slug, link_id=link_id), 303)


# --- rules ----------------------------------------------------------------------------------------------

RULE_FIELDS = ("counterparty", "reference", "direction", "account", "description")


@bp.route("/t/<tenant_slug>/books/bank/rules")
@requires("tenant:ledger.keep")
def bank_rules(tenant_slug: str) -> ResponseReturnValue:
    return _rules_page({}, {})


def _rules_page(typed: dict, errors: dict, status: int = 200) -> ResponseReturnValue:
    if services.book_of(g.tenant) is None:
        return _not_started()
    taken = {li.account_id for li in reconcile.links()}
    accounts = [a for a in services.postable(services.accounts(active_only=True)) if a.id not in taken]
    return render_template("ledger/reconcile_rules.html", tenant=g.tenant, rules=reconcile.rules(),
                           accounts=accounts, typed=typed, errors=errors), status


@bp.route("/t/<tenant_slug>/books/bank/rules", methods=["POST"])
@requires("tenant:ledger.keep")
def bank_rule_save(tenant_slug: str) -> ResponseReturnValue:
    typed = {k: request.form.get(k, "") for k in RULE_FIELDS}
    try:
        reconcile.save_rule(_actor(), g.tenant, reconcile.RuleInput(**typed), ip=request.remote_addr)
    except LedgerError as exc:
        flash(str(exc), "error")
        return _rules_page(typed, exc.errors, 422)
    flash(_("Rule saved. Preview what it would post before applying it."), "success")
    return redirect(url_for("ledger.bank_rules", tenant_slug=tenant_slug), 303)


@bp.route("/t/<tenant_slug>/books/bank/rules/<rule_id>/delete", methods=["POST"])
@requires("tenant:ledger.keep")
def bank_rule_delete(tenant_slug: str, rule_id: str) -> ResponseReturnValue:
    reconcile.delete_rule(_actor(), g.tenant, rule_id, ip=request.remote_addr)
    flash(_("Rule deleted; the entries it posted stay in the books."), "success")
    return redirect(url_for("ledger.bank_rules", tenant_slug=tenant_slug), 303)


@bp.route("/t/<tenant_slug>/books/bank/rules/preview")
@requires("tenant:ledger.keep")
def bank_rules_preview(tenant_slug: str) -> ResponseReturnValue:
    """What applying the rules would post: each unmatched transaction a rule fits, and the entry it would get."""
    if services.book_of(g.tenant) is None:
        return _not_started()
    return render_template("ledger/reconcile_preview.html", tenant=g.tenant, hits=reconcile.rule_hits())


@bp.route("/t/<tenant_slug>/books/bank/rules/apply", methods=["POST"])
@requires("tenant:ledger.keep")
def bank_rules_apply(tenant_slug: str) -> ResponseReturnValue:
    """Post what the preview showed (only the transactions it listed, and only if a rule still fits each)."""
    applied = reconcile.apply_rules(_actor(), g.tenant, request.form.getlist("transaction"), ip=request.remote_addr)
    if applied.posted:
        flash(ngettext("%(num)d entry posted by a rule.", "%(num)d entries posted by the rules.",
                       len(applied.posted)), "success")
    for hit, why in applied.refused:
        flash(_("Not posted for the transaction of %(day)s: %(why)s", day=hit.txn.booked_on.strftime("%d/%m/%Y"),
                why=why), "error")
    if applied.gone:
        flash(ngettext("%(num)d transaction of the preview was reconciled since, or no rule fits it any more: left "
                       "as it is.", "%(num)d transactions of the preview were reconciled since, or no rule fits them "
                       "any more: left as they are.", applied.gone), "info")
    if not (applied.posted or applied.refused or applied.gone):
        flash(_("Nothing to post: no rule fits an unmatched transaction."), "info")
    return redirect(url_for("ledger.bank_rules_preview", tenant_slug=tenant_slug), 303)


# --- the report -----------------------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/books/bank/<link_id>/report")
@requires("tenant:ledger.view")
def bank_report(tenant_slug: str, link_id: str) -> ResponseReturnValue:
    """The statement's balance and the books' on a day, every item between them, and the difference."""
    link = reconcile.get_link(link_id)
    try:
        on = date.fromisoformat(request.args["on"]) if request.args.get("on") else date.today()
    except ValueError:
        flash(_("Give the day as a date; today is shown."), "error")
        on = date.today()
    return render_template("ledger/reconcile_report.html", tenant=g.tenant, link=link,
                           report=reconcile.report(link, on), progress=reconcile.progress(link))
