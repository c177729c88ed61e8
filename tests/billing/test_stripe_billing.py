"""Stripe in the statements: one invoice per statement, webhooks applied once and by state, dunning, suspension.

Runs against the Stripe emulator on loopback (``tests/stripe_emulator.py``) with a real rq worker. Every
expected amount is worked out by hand in the comments from the plan set up here. Webhooks are signed the
way Stripe signs them: ``v1`` is the hex HMAC-SHA256 of ``"<timestamp>.<payload>"`` keyed with the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import socket
import time
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
import stripe
from sqlalchemy import func, select

from portal.billing import dunning, statements, stripe_billing
from portal.billing.models import BillingAccount, Payment, Statement, StripeEvent
from portal.documents import services as documents
from portal.extensions import db
from portal.work.models import Notification
from tenants.audit import AuditEvent, PlatformAuditEvent
from tenants.context import Scope, bound, for_tenant
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.documents import samples
from tests.factories import csrf_token, login, make_person, make_tenant, put_on_plan

# VND (no minor unit): fee 2,000,000; discount 10 % = 200,000; net 1,800,000; tax 8 % = 144,000;
# total 1,800,000 + 144,000 = 1,944,000.
VND = dict(currency="VND", fee=2_000_000, discount_bp=1000, tax_bp=800, locale="vi",
           amounts=[2_000_000, -200_000, 144_000], total=1_944_000)
# USD in cents: fee $123.45 = 12,345; discount 15 % = 1,851.75 → 1,852 (half up); net 10,493;
# tax 10 % = 1,049.3 → 1,049; total 10,493 + 1,049 = 11,542.
USD = dict(currency="USD", fee=12_345, discount_bp=1500, tax_bp=1000, locale="en",
           amounts=[12_345, -1_852, 1_049], total=11_542)


@pytest.fixture
def stripe_on(app, stripe_emulator):
    saved = {k: app.config.get(k) for k in stripe_emulator.config()}
    app.config.update(stripe_emulator.config())
    yield stripe_emulator
    app.config.update(saved)


@pytest.fixture
def raw(stripe_emulator) -> stripe.StripeClient:
    return stripe.StripeClient(stripe_emulator.api_key, base_addresses={"api": stripe_emulator.api_base})


def _issue(app, *, currency, fee, discount_bp, tax_bp, locale, **_ignored) -> SimpleNamespace:
    """A tenant on a plan since 2025 with a client admin, a member and a provider admin; last month issued."""
    with app.app_context():
        tenant = make_tenant(locale=locale)
        admin = make_person(Role.CLIENT_ADMIN, tenant)
        member = make_person(Role.CLIENT_MEMBER, tenant, mfa=False)
        provider = make_person(Role.PROVIDER_ADMIN)
        put_on_plan(tenant, currency=currency, fee=fee, name="Standard", tax_bp=tax_bp, discount_bp=discount_bp)
        month = statements.last_month(tenant)
        outcome = statements.run_for_tenant(tenant.id, month)
        assert outcome.state == "issued"
        return SimpleNamespace(tenant_id=tenant.id, slug=tenant.slug, admin=admin, member=member, provider=provider,
                               statement_id=outcome.statement_id, month=month)


def _statement(app, t) -> Statement:
    with app.app_context(), for_tenant(t.tenant_id):
        statement = db.session.get(Statement, t.statement_id)
        db.session.expunge(statement)
        return statement


def _invoices_for(raw, statement_id) -> list:
    return [i for i in raw.v1.invoices.list(params={"limit": 100}).auto_paging_iter()
            if (i.metadata.to_dict() if i.metadata else {}).get("statement_id") == str(statement_id)]


def _amounts(raw, invoice_id) -> list[int]:
    return [item.amount for item in raw.v1.invoices.line_items.list(invoice_id, params={"limit": 100})
            .auto_paging_iter()]


# --- one invoice per statement, equal to it ------------------------------------------------------------------

@pytest.mark.parametrize("case", [VND, USD], ids=["VND", "USD"])
def test_the_invoice_equals_the_statement_and_is_made_once(app, stripe_on, raw, run_jobs, case):
    t = _issue(app, **case)
    run_jobs()
    statement = _statement(app, t)
    assert statement.total == case["total"]
    assert statement.stripe_invoice_id and statement.stripe_invoice_url
    invoices = _invoices_for(raw, t.statement_id)
    assert [i.id for i in invoices] == [statement.stripe_invoice_id]
    invoice = invoices[0]
    assert (invoice.total, invoice.currency, invoice.status) == (case["total"], case["currency"].lower(), "open")
    assert _amounts(raw, invoice.id) == case["amounts"]
    if case["locale"] == "en":
        descriptions = [i.description for i in raw.v1.invoices.line_items.list(invoice.id).auto_paging_iter()]
        assert descriptions == ["Monthly fee, Standard", "Discount", "Tax (10 %)"]
    # The tenant's customer is kept on its billing account.
    with app.app_context(), for_tenant(t.tenant_id):
        customer = db.session.scalar(select(BillingAccount.stripe_customer_id))
    assert customer == invoice.customer

    # The statement run again, and the job run again: still one invoice.
    with app.app_context():
        assert statements.run_for_tenant(t.tenant_id, t.month).state == "exists"
        with for_tenant(t.tenant_id):
            db.session.execute(Statement.__table__.update().where(Statement.id == t.statement_id)
                               .values(stripe_invoice_id=None))  # as if the first job died before storing it
            db.session.commit()
            assert stripe_billing.invoice_statement(t.statement_id) == invoice.id
    run_jobs()
    assert [i.id for i in _invoices_for(raw, t.statement_id)] == [invoice.id]


def test_a_job_that_crashed_half_way_is_finished_not_repeated(app, stripe_on, raw, run_jobs):
    """The first attempt made the draft and one line in Stripe, then died; the retried job completes it."""
    t = _issue(app, **VND)
    with app.app_context(), for_tenant(t.tenant_id):
        tenant = db.session.get(Tenant, t.tenant_id)
        customer = stripe_billing.ensure_customer(tenant)
        statement = db.session.get(Statement, t.statement_id)
        first = stripe_billing.invoice_lines(statement)[0]
    metadata = {"statement_id": str(t.statement_id), "version": "1"}
    draft = raw.v1.invoices.create(params={"customer": customer, "currency": "vnd", "auto_advance": False,
                                           "collection_method": "send_invoice", "days_until_due": 15,
                                           "metadata": metadata})
    raw.v1.invoice_items.create(params={"customer": customer, "invoice": draft.id, "currency": "vnd",
                                        "amount": first.amount_minor, "description": first.description,
                                        "metadata": {**metadata, "line": "0"}})
    run_jobs()
    statement = _statement(app, t)
    assert statement.stripe_invoice_id == draft.id
    assert [i.id for i in _invoices_for(raw, t.statement_id)] == [draft.id]
    assert _amounts(raw, draft.id) == VND["amounts"]
    assert raw.v1.invoices.retrieve(draft.id).total == statement.total == 1_944_000


def test_a_correction_voids_the_invoice_it_replaces(app, stripe_on, raw, run_jobs):
    t = _issue(app, **VND)
    run_jobs()
    first = _statement(app, t).stripe_invoice_id
    with app.app_context():
        provider = db.session.get(User, t.provider.id)
        with bound(Scope(user_id=provider.id, tenant_ids=frozenset({t.tenant_id}), role=Role.PROVIDER_ADMIN)):
            second = statements.reissue(provider, db.session.get(Tenant, t.tenant_id), t.month,
                                        reason="Discount agreed on the phone").id
    run_jobs()
    assert raw.v1.invoices.retrieve(first).status == "void"  # the replaced version can no longer be paid
    [invoice] = _invoices_for(raw, second)
    assert invoice.status == "open" and invoice.id != first


def test_stripe_off_makes_no_invoice(app, run_jobs):
    t = _issue(app, **USD)
    run_jobs()
    assert _statement(app, t).stripe_invoice_id is None


# --- webhooks ------------------------------------------------------------------------------------------------

def _sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _event(kind: str, obj: dict, created: int) -> bytes:
    return json.dumps({"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": kind, "created": created,
                       "api_version": "2026-10-28.endive", "data": {"object": obj}}).encode()


def _invoice_obj(statement: Statement, status: str = "paid") -> dict:
    """An invoice as today's API sends it in a webhook: no ``payment_intent`` (its payments are not included)."""
    return {"id": statement.stripe_invoice_id, "object": "invoice", "status": status,
            "amount_paid": statement.total if status == "paid" else 0, "currency": statement.currency.lower(),
            "metadata": {"statement_id": str(statement.id), "version": str(statement.version)},
            "created": int(time.time()) - 3600}


def _pay_in_stripe(raw, invoice_id: str) -> str:
    """The client's card pays the invoice in the emulator; returns the payment intent that paid it."""
    customer = raw.v1.invoices.retrieve(invoice_id).customer
    card = raw.v1.payment_methods.create(params={"type": "card", "card": {
        "number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}})
    raw.v1.payment_methods.attach(card.id, params={"customer": customer})
    raw.v1.customers.update(customer, params={"invoice_settings": {"default_payment_method": card.id}})
    assert raw.v1.invoices.pay(invoice_id).status == "paid"
    [payment] = raw.v1.invoice_payments.list(params={"invoice": invoice_id}).data
    return payment.payment.payment_intent


def _sent(raw, kind: str, object_id: str) -> dict:
    """The object of the last event of ``kind`` about ``object_id`` that the emulator sent, as Stripe sends it."""
    sent = [event.data.object.to_dict() for event in raw.v1.events.list(params={"limit": 100}).auto_paging_iter()
            if event.type == kind]
    about = [obj for obj in sent if object_id in (obj.get("id"), obj.get("payment_intent"))]
    assert about, f"the emulator sent no {kind} about {object_id}"
    return about[-1]  # the emulator lists its events oldest first


def _post(app, stripe_emulator, payload: bytes, signature: str | None = None):
    headers = {"Stripe-Signature": signature if signature is not None else _sign(payload,
                                                                                   stripe_emulator.webhook_secret)}
    return app.test_client().post("/billing/stripe/webhook", data=payload, headers=headers,
                                  content_type="application/json")


def _state(app, t) -> tuple[str, int, list[int]]:
    with app.app_context(), for_tenant(t.tenant_id):
        s = db.session.get(Statement, t.statement_id)
        amounts = list(db.session.scalars(select(Payment.amount).where(Payment.statement_id == s.id)
                                          .order_by(Payment.amount.desc())))
        return s.payment_state, s.paid, amounts


def _audited(app, t, action: str) -> int:
    with app.app_context(), for_tenant(t.tenant_id):
        return db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == action, AuditEvent.object_id == str(t.statement_id)))


def _notified(app, t, person, kind: str) -> int:
    with app.app_context(), for_tenant(t.tenant_id):
        return db.session.scalar(select(func.count()).select_from(Notification).where(
            Notification.user_id == person.id, Notification.kind == kind))


@pytest.fixture
def invoiced(app, stripe_on, run_jobs):
    t = _issue(app, **VND)
    run_jobs()
    t.statement = _statement(app, t)
    assert t.statement.stripe_invoice_id
    return t


def test_a_valid_event_is_applied_once_even_delivered_ten_times(app, stripe_on, invoiced, run_jobs, smtp):
    t = invoiced
    payload = _event("invoice.paid", _invoice_obj(t.statement), int(time.time()))
    for _ in range(10):
        response = _post(app, stripe_on, payload)
        assert response.status_code == 200
    assert _state(app, t) == ("paid", 1_944_000, [1_944_000])
    with app.app_context(), for_tenant(t.tenant_id):
        payment = db.session.scalar(select(Payment).where(Payment.statement_id == t.statement_id))
        assert (payment.method, payment.reference) == ("stripe", t.statement.stripe_invoice_id)
    assert _audited(app, t, "statement.paid") == 1
    assert _notified(app, t, t.admin, "statement_paid") == 1
    assert _notified(app, t, t.provider, "statement_paid") == 1
    assert _notified(app, t, t.member, "statement_paid") == 0  # members see no money
    with app.app_context():
        event_id = json.loads(payload)["id"]
        assert db.session.get(StripeEvent, event_id).outcome == "applied"
    # The e-mail links to the statements page and says no amount.
    run_jobs()
    mails = smtp.to(t.admin.email)
    assert mails, "the client admin got no e-mail"
    body = mails[-1].get_content()
    assert f"/t/{t.slug}/statements" in body
    for amount in ("1,944,000", "1.944.000", "1944000"):
        assert amount not in body


@pytest.mark.parametrize("case", ["wrong secret", "tampered", "missing", "stale"])
def test_bad_and_stale_signatures_are_refused_and_audited(app, stripe_on, invoiced, case):
    t = invoiced
    payload = _event("invoice.paid", _invoice_obj(t.statement), int(time.time()))
    signature = {"wrong secret": _sign(payload, "whsec_not_ours"),
                 "tampered": _sign(payload, stripe_on.webhook_secret),
                 "missing": "",
                 "stale": _sign(payload, stripe_on.webhook_secret, int(time.time()) - 301)}[case]
    body = payload.replace(b'"paid"', b'"void"', 1) if case == "tampered" else payload
    with app.app_context():
        before = db.session.scalar(select(func.max(PlatformAuditEvent.seq))) or 0
    response = _post(app, stripe_on, body, signature)
    assert response.status_code == 400
    assert _state(app, t) == ("unpaid", 0, [])
    with app.app_context():
        refused = list(db.session.scalars(select(PlatformAuditEvent).where(
            PlatformAuditEvent.seq > before, PlatformAuditEvent.action == "stripe.webhook_refused")))
        assert len(refused) == 1
        reason = refused[0].data["reason"]
        assert t.statement.stripe_invoice_id not in json.dumps(refused[0].data)  # never the payload
        if case == "stale":
            assert "tolerance" in reason.lower()


def _sequence(raw, t, base: int) -> dict[str, bytes]:
    """failed (t1), paid (t2), refunded (t3): the invoice's life as the emulator sent it, each event once.

    The card pays, then the whole payment is refunded, in the emulator; the objects are what it sent (the
    invoice naming no payment intent, the charge naming no invoice), stamped with times one second apart.
    """
    s = t.statement
    intent = _pay_in_stripe(raw, s.stripe_invoice_id)
    paid = _sent(raw, "invoice.paid", s.stripe_invoice_id)
    assert "payment_intent" not in paid and paid["amount_paid"] == s.total
    raw.v1.refunds.create(params={"payment_intent": intent})
    charge = _sent(raw, "charge.refunded", intent)
    assert charge["amount_refunded"] == s.total and not charge.get("invoice")
    return {"failed": _event("invoice.payment_failed", _invoice_obj(s, "open"), base + 1),
            "paid": _event("invoice.paid", paid, base + 2),
            "refunded": _event("charge.refunded", charge, base + 3)}


def test_a_shuffled_sequence_ends_like_the_ordered_one(app, stripe_on, raw, run_jobs):
    base = int(time.time()) - 600
    ends = []
    for order in (["failed", "paid"], ["paid", "failed"], ["failed", "paid", "refunded"],
                  ["refunded", "paid", "failed"], ["paid", "refunded", "failed"]):
        t = _issue(app, **VND)
        run_jobs()
        t.statement = _statement(app, t)
        events = _sequence(raw, t, base)
        for name in order:
            response = _post(app, stripe_on, events[name])
            assert response.status_code == 200, response.get_data(as_text=True)
        ends.append((order, _state(app, t)))
    # failed then paid, in either order: paid, the money once.
    assert ends[0][1] == ends[1][1] == ("paid", 1_944_000, [1_944_000])
    # With the refund, in any order (the refund first too: Stripe says which invoice its payment paid):
    # refunded, the money in and out again.
    assert ends[2][1] == ends[3][1] == ends[4][1] == ("refunded", 0, [1_944_000, -1_944_000])


def test_a_partial_refund_then_the_rest_counts_each_once(app, stripe_on, raw, invoiced):
    t = invoiced
    intent = _pay_in_stripe(raw, t.statement.stripe_invoice_id)
    now = int(time.time())
    assert _post(app, stripe_on, _event("invoice.paid", _sent(raw, "invoice.paid", t.statement.stripe_invoice_id),
                                        now - 10)).status_code == 200
    # 1,944,000 paid; 500,000 refunded, then the remaining 1,444,000: Stripe's charge says 500,000 then 1,944,000.
    raw.v1.refunds.create(params={"payment_intent": intent, "amount": 500_000})
    first = _event("charge.refunded", _sent(raw, "charge.refunded", intent), now - 5)
    raw.v1.refunds.create(params={"payment_intent": intent})
    second = _event("charge.refunded", _sent(raw, "charge.refunded", intent), now)
    for payload in (first, second, first, second):  # each delivered twice
        assert _post(app, stripe_on, payload).status_code == 200
    assert _state(app, t) == ("refunded", 0, [1_944_000, -500_000, -1_444_000])
    assert _audited(app, t, "statement.refunded") == 2


def test_a_full_refund_arriving_before_the_partial_one_counts_the_money_once(app, stripe_on, raw, invoiced):
    t = invoiced
    intent = _pay_in_stripe(raw, t.statement.stripe_invoice_id)
    now = int(time.time())
    raw.v1.refunds.create(params={"payment_intent": intent, "amount": 500_000})
    partial = _event("charge.refunded", _sent(raw, "charge.refunded", intent), now - 5)
    raw.v1.refunds.create(params={"payment_intent": intent})
    whole = _event("charge.refunded", _sent(raw, "charge.refunded", intent), now)
    for payload in (whole, partial):  # Stripe's cumulative amount_refunded: the older one adds nothing
        assert _post(app, stripe_on, payload).status_code == 200
    assert _state(app, t) == ("refunded", -1_944_000, [-1_944_000])


def test_a_dispute_marks_the_statement_disputed(app, stripe_on, raw, invoiced):
    t = invoiced
    intent = _pay_in_stripe(raw, t.statement.stripe_invoice_id)
    now = int(time.time())
    # The statement never met the payment intent (the invoice event does not name it): Stripe is asked.
    assert _post(app, stripe_on, _event("invoice.paid", _invoice_obj(t.statement), now - 5)).status_code == 200
    dispute = {"id": "dp_" + uuid.uuid4().hex, "object": "dispute", "charge": "ch_x", "payment_intent": intent,
               "amount": t.statement.total, "status": "needs_response", "created": now}
    assert _post(app, stripe_on, _event("charge.dispute.created", dispute, now)).status_code == 200
    assert _state(app, t)[0] == "disputed"
    assert _audited(app, t, "statement.charge_disputed") == 1
    assert _statement(app, t).stripe_payment_intent_id == intent  # kept: the next event needs no question


def test_a_refund_stripe_cannot_trace_now_is_delivered_again_later(app, stripe_on, raw, invoiced):
    t = invoiced
    intent = _pay_in_stripe(raw, t.statement.stripe_invoice_id)
    raw.v1.refunds.create(params={"payment_intent": intent})
    payload = _event("charge.refunded", _sent(raw, "charge.refunded", intent), int(time.time()))
    with socket.socket() as closed:  # a loopback port nobody listens on: Stripe unreachable
        closed.bind(("127.0.0.1", 0))
        app.config["STRIPE_API_BASE"] = f"http://127.0.0.1:{closed.getsockname()[1]}"
        response = _post(app, stripe_on, payload)
    app.config["STRIPE_API_BASE"] = stripe_on.api_base
    assert response.status_code == 409  # not kept: Stripe delivers it again
    with app.app_context():
        assert db.session.get(StripeEvent, json.loads(payload)["id"]) is None
    assert _state(app, t) == ("unpaid", 0, [])
    assert _post(app, stripe_on, payload).status_code == 200
    assert _state(app, t) == ("refunded", -1_944_000, [-1_944_000])


def test_a_refund_of_a_payment_that_paid_no_invoice_of_ours_changes_nothing(app, stripe_on, raw):
    charge = {"id": "ch_" + uuid.uuid4().hex, "object": "charge", "payment_intent": "pi_" + uuid.uuid4().hex,
              "amount": 5_000, "amount_refunded": 5_000, "refunded": True, "currency": "usd",
              "created": int(time.time())}
    payload = _event("charge.refunded", charge, int(time.time()))
    assert _post(app, stripe_on, payload).status_code == 200
    with app.app_context():
        assert db.session.get(StripeEvent, json.loads(payload)["id"]).outcome == "unmatched"


def test_an_event_for_no_statement_of_ours_is_acknowledged_and_changes_nothing(app, stripe_on):
    obj = {"id": "in_" + uuid.uuid4().hex, "object": "invoice", "amount_paid": 5, "metadata": {}}
    payload = _event("invoice.paid", obj, int(time.time()))
    assert _post(app, stripe_on, payload).status_code == 200
    with app.app_context():
        assert db.session.get(StripeEvent, json.loads(payload)["id"]).outcome == "unmatched"


def test_the_webhook_is_not_there_when_stripe_is_off(app):
    assert app.test_client().post("/billing/stripe/webhook", data=b"{}").status_code == 404


# --- the client's way to Stripe's payment-method page -------------------------------------------------------------

def test_the_client_admin_goes_to_stripes_page_and_others_do_not_see_the_way(app, stripe_on, invoiced):
    t = invoiced
    page = f"/t/{t.slug}/statements/{t.statement_id}"
    admin = app.test_client()
    login(admin, t.admin)
    html = admin.get(page).get_data(as_text=True)
    assert 'data-testid="payment-method"' in html
    assert t.statement.stripe_invoice_url in html
    response = admin.post(page + "/payment-method", data={"csrf_token": csrf_token(admin, page)})
    assert response.status_code == 303
    assert response.headers["Location"].startswith(stripe_on.api_base + "/hosted/portal/")
    with app.app_context():
        approver = make_person(Role.CLIENT_APPROVER, db.session.get(Tenant, t.tenant_id))
    other = app.test_client()
    login(other, approver)
    assert 'data-testid="payment-method"' not in other.get(page).get_data(as_text=True)
    assert other.post(page + "/payment-method", data={"csrf_token": csrf_token(other, page)}).status_code == 403


# --- dunning and suspension ------------------------------------------------------------------------------------

def _reminders(app, t) -> int:
    return _notified(app, t, t.admin, "statement_overdue")


def _suspended(app, t) -> str | None:
    with app.app_context():
        return db.session.get(Tenant, t.tenant_id).uploads_suspended_reason


def _upload(app, t) -> str:
    with app.app_context():
        tenant = db.session.get(Tenant, t.tenant_id)
        with bound(Scope(user_id=t.member.id, tenant_ids=frozenset({t.tenant_id}), role=Role.CLIENT_MEMBER)):
            user = db.session.get(User, t.member.id)
            result = documents.upload(user, tenant, [samples.pdf(random.randint(10_000, 99_999))],
                                      filename="receipt.pdf", target=documents.upload_target(user, category="invoice"))
            db.session.commit()
            return result.status


def test_dunning_reminds_once_per_stage_and_never_suspends_when_off(app, run_jobs):
    t = _issue(app, **USD)
    due = _statement(app, t).due_on
    for days, stage, reminders in ((1, 0, 0), (3, 1, 1), (3, 1, 1), (6, 1, 1), (7, 2, 2), (14, 3, 3), (30, 3, 3)):
        with app.app_context():
            assert dunning.run(t.tenant_id, today=due + timedelta(days=days)) == stage
        assert _reminders(app, t) == reminders, f"day {days}"
    assert _suspended(app, t) is None
    assert _upload(app, t) != "refused"


def test_suspension_only_when_switched_on_and_payment_lifts_it(app, stripe_on, run_jobs):
    t = _issue(app, **VND)
    run_jobs()
    t.statement = _statement(app, t)
    with app.app_context(), for_tenant(t.tenant_id):
        dunning.account(t.tenant_id).suspend_on_nonpayment = True
        db.session.commit()
    due = t.statement.due_on
    with app.app_context():
        assert dunning.run(t.tenant_id, today=due + timedelta(days=13)) == 2
    assert _suspended(app, t) is None  # not after the last stage yet
    with app.app_context():
        assert dunning.run(t.tenant_id, today=due + timedelta(days=14)) == 3
    assert _suspended(app, t) == "nonpayment"
    assert _upload(app, t) == "refused"
    with app.app_context(), for_tenant(t.tenant_id):
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "tenant.uploads_suspended")) == 1
    # Paid through Stripe: uploads open again at once.
    payload = _event("invoice.paid", _invoice_obj(t.statement), int(time.time()))
    assert _post(app, stripe_on, payload).status_code == 200
    assert _suspended(app, t) is None
    assert _upload(app, t) != "refused"
    with app.app_context():
        assert dunning.run(t.tenant_id, today=due + timedelta(days=20)) == 0


def test_the_provider_admin_switches_pausing_uploads_on_its_page(app, world):
    admin = app.test_client()
    login(admin, world["provider_admin"])
    page = f"/provider/tenants/{world.a.slug}"
    assert 'data-testid="nonpayment-pause"' in admin.get(page).get_data(as_text=True)
    r = admin.post(f"/t/{world.a.slug}/nonpayment-pause", data={"csrf_token": csrf_token(admin, page), "on": "1"})
    assert r.status_code == 302
    with app.app_context(), for_tenant(world.a.id):
        assert db.session.scalar(select(BillingAccount.suspend_on_nonpayment)) is True
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "tenant.nonpayment_pause_set")) >= 1
    manager = app.test_client()
    login(manager, world["manager"])
    r = manager.post(f"/t/{world.a.slug}/nonpayment-pause", data={"csrf_token": csrf_token(manager, "/provider/work"),
                                                                  "on": "0"})
    assert r.status_code == 403  # provider admins only
    with app.app_context(), for_tenant(world.a.id):
        assert db.session.scalar(select(BillingAccount.suspend_on_nonpayment)) is True
