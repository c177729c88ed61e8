"""The Stripe gateway against the Stripe emulator on loopback, driven by the real ``stripe`` library.

Expected amounts are worked out by hand in the comments, from the lines given, never read back from
the code under test. Webhook signatures are made here from Stripe's scheme: ``v1`` is the hex
HMAC-SHA256 of ``"<timestamp>.<payload>"`` keyed with the endpoint's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
import stripe
from flask import Flask

from portal import config
from portal.billing import stripe_gateway as gateway
from portal.billing.stripe_gateway import InvoiceLine


@pytest.fixture
def stripe_app(stripe_emulator) -> Iterator[Flask]:
    """An application context configured, as production would be, but pointed at the emulator."""
    app = Flask("stripe-gateway-test")
    app.config.update(config.load(overrides=stripe_emulator.config(), env={}))
    with app.app_context():
        yield app


@pytest.fixture
def raw(stripe_emulator) -> stripe.StripeClient:
    """A plain client to look at what the gateway left in Stripe."""
    return stripe.StripeClient(stripe_emulator.api_key, base_addresses={"api": stripe_emulator.api_base})


def _tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:12]}"


def _statement() -> str:
    return str(uuid.uuid4())


def _customer(tenant_id: str | None = None) -> str:
    tenant_id = tenant_id or _tenant()
    return gateway.ensure_customer(tenant_id=tenant_id, name=f"Công ty {tenant_id}", email=f"{tenant_id}@example.vn",
                                   customer_id=None)


def _customers_of(raw: stripe.StripeClient, tenant_id: str) -> list[str]:
    return [c.id for c in raw.v1.customers.list(params={"limit": 100}).auto_paging_iter()
            if c.metadata.to_dict().get("tenant_id") == tenant_id]


def _invoices_of(raw: stripe.StripeClient, customer_id: str, statement_id: str) -> list[stripe.Invoice]:
    return [i for i in raw.v1.invoices.list(params={"customer": customer_id, "limit": 100}).auto_paging_iter()
            if i.metadata.to_dict().get("statement_id") == statement_id]


def _lines_of(raw: stripe.StripeClient, invoice_id: str) -> list[tuple[str, int, str]]:
    return [(item.description, item.amount, item.currency)
            for item in raw.v1.invoices.line_items.list(invoice_id, params={"limit": 4}).auto_paging_iter()]


# ---- configuration ---------------------------------------------------------------------------------------


def test_off_without_an_api_key():
    app = Flask("stripe-off")
    app.config.update(config.load(env={}))
    with app.app_context():
        assert gateway.enabled() is False
        with pytest.raises(gateway.NotConfigured):
            gateway.ensure_customer(tenant_id="t", name="T", email=None, customer_id=None)
        with pytest.raises(gateway.NotConfigured):
            gateway.verify_event(b"{}", "t=1,v1=00")


def test_on_with_an_api_key_and_stripes_own_address_by_default(stripe_app):
    assert gateway.enabled() is True
    assert config.load(env={})["STRIPE_API_BASE"] == "https://api.stripe.com"
    assert config.load(env={"STRIPE_API_KEY": "sk_test_x"})["STRIPE_API_KEY"] == "sk_test_x"


PROD = {"PORTAL_ENV": "production", "SECRET_KEY": "s" * 40, "DATABASE_URL": "postgresql://a@h/d",
        "MIGRATION_DATABASE_URL": "postgresql://o@h/d", "REDIS_URL": "redis://h", "FIELD_KEY": "k",
        "BASE_URL": "https://portal.example.com"}


def test_production_refuses_stripe_without_its_webhook_secret_or_over_plain_http():
    assert config.load(env=PROD)["STRIPE_API_KEY"] is None  # Stripe off: nothing more is needed
    with pytest.raises(config.ConfigError, match="^STRIPE_WEBHOOK_SECRET must be set"):
        config.load(env={**PROD, "STRIPE_API_KEY": "sk_live_x"})
    with pytest.raises(config.ConfigError, match="^STRIPE_API_BASE must be an https"):
        config.load(env={**PROD, "STRIPE_API_KEY": "sk_live_x", "STRIPE_WEBHOOK_SECRET": "whsec_x",
                         "STRIPE_API_BASE": "http://127.0.0.1:1"})
    ok = config.load(env={**PROD, "STRIPE_API_KEY": "sk_live_x", "STRIPE_WEBHOOK_SECRET": "whsec_x"})
    assert ok["STRIPE_WEBHOOK_SECRET"] == "whsec_x"


# ---- customers -------------------------------------------------------------------------------------------


def test_one_customer_per_tenant(stripe_app, raw):
    tenant, other = _tenant(), _tenant()
    first = gateway.ensure_customer(tenant_id=tenant, name="Công ty An Phát", email="ke.toan@anphat.vn",
                                    customer_id=None)
    # Called again with the stored id: the same customer.
    assert gateway.ensure_customer(tenant_id=tenant, name="Công ty An Phát", email="ke.toan@anphat.vn",
                                   customer_id=first) == first
    # Called again without it (the job died before storing it): still the same customer, not a second one.
    assert gateway.ensure_customer(tenant_id=tenant, name="Công ty An Phát", email="ke.toan@anphat.vn",
                                   customer_id=None) == first
    assert _customers_of(raw, tenant) == [first]
    # Another tenant gets its own.
    second = gateway.ensure_customer(tenant_id=other, name="Other", email=None, customer_id=None)
    assert second != first
    assert _customers_of(raw, other) == [second]
    customer = raw.v1.customers.retrieve(first)
    assert (customer.name, customer.email) == ("Công ty An Phát", "ke.toan@anphat.vn")


def test_a_renamed_tenant_updates_its_customer(stripe_app, raw):
    tenant = _tenant()
    cid = gateway.ensure_customer(tenant_id=tenant, name="Old name", email="a@example.vn", customer_id=None)
    assert gateway.ensure_customer(tenant_id=tenant, name="New name", email="b@example.vn", customer_id=cid) == cid
    customer = raw.v1.customers.retrieve(cid)
    assert (customer.name, customer.email) == ("New name", "b@example.vn")


def test_a_customer_of_another_tenant_is_refused(stripe_app):
    cid = _customer()
    with pytest.raises(gateway.StripeGatewayError, match="belongs to another tenant"):
        gateway.ensure_customer(tenant_id=_tenant(), name="Intruder", email=None, customer_id=cid)


def test_a_deleted_customer_is_replaced(stripe_app, raw):
    tenant = _tenant()
    old = gateway.ensure_customer(tenant_id=tenant, name="T", email=None, customer_id=None)
    raw.v1.customers.delete(old)
    new = gateway.ensure_customer(tenant_id=tenant, name="T", email=None, customer_id=old)
    assert new != old
    assert _customers_of(raw, tenant) == [new]


# ---- invoices --------------------------------------------------------------------------------------------

# VND is zero-decimal in Stripe: the minor unit is the dong.
#   plan fee 1,500,000; 37 documents x 2,000 = 74,000; 12.5 h x 350,000 = 4,375,000; discount -150,000
#   net 1,500,000 + 74,000 + 4,375,000 - 150,000 = 5,799,000; VAT 10 % = 579,900
#   total 5,799,000 + 579,900 = 6,378,900
VND_LINES = [InvoiceLine("Phí dịch vụ tháng 11/2026 (gói Cơ bản)", 1_500_000),
             InvoiceLine("Chứng từ đã xử lý: 37 × 2.000 ₫", 74_000),
             InvoiceLine("Giờ làm kế toán: 12,5 × 350.000 ₫", 4_375_000),
             InvoiceLine("Chiết khấu", -150_000),
             InvoiceLine("Thuế GTGT 10 %", 579_900)]
VND_TOTAL = 6_378_900

# USD in cents:
#   plan fee $120.00 = 12,000; 37 documents x $0.85 = $31.45 = 3,145; 12.5 h x $45.00 = $562.50 = 56,250;
#   discount -$10.00 = -1,000; net 12,000 + 3,145 + 56,250 - 1,000 = 70,395
#   VAT 10 % = 7,039.5 cents, rounded by the statement (half up) to 7,040; total 70,395 + 7,040 = 77,435
USD_LINES = [InvoiceLine("Monthly fee, November 2026 (Basic plan)", 12_000),
             InvoiceLine("Documents processed: 37 x $0.85", 3_145),
             InvoiceLine("Bookkeeping hours: 12.5 x $45.00", 56_250),
             InvoiceLine("Discount", -1_000),
             InvoiceLine("VAT 10 %", 7_040)]
USD_TOTAL = 77_435


@pytest.mark.parametrize(("currency", "lines", "total"), [("VND", VND_LINES, VND_TOTAL), ("USD", USD_LINES, USD_TOTAL)])
def test_the_invoice_holds_the_statements_lines_to_the_minor_unit(stripe_app, raw, stripe_emulator,
                                                                  currency, lines, total):
    cid = _customer()
    statement = _statement()
    before = int(time.time())
    invoice = gateway.create_invoice(customer_id=cid, statement_id=statement, version=1, currency=currency,
                                     lines=lines, due_days=14)
    assert invoice.total == total
    assert invoice.status == "open"
    assert invoice.currency == currency.lower()
    assert invoice.hosted_invoice_url and invoice.hosted_invoice_url.startswith(stripe_emulator.api_base)
    assert invoice.number
    assert _lines_of(raw, invoice.id) == [(line.description, line.amount_minor, currency.lower()) for line in lines]
    stored = raw.v1.invoices.retrieve(invoice.id)
    assert stored.total == total
    assert stored.metadata.to_dict() == {"statement_id": statement, "version": "1"}
    assert stored.collection_method == "send_invoice"
    assert before + 14 * 86400 <= stored.due_date <= int(time.time()) + 14 * 86400
    assert stored.auto_advance is True  # finalised with automatic collection: Stripe sends it


def test_more_lines_than_a_page(stripe_app, raw):
    """Stripe lists lines ten at a time by default; all 30 are there and counted (30 x 1,001 = 30,030)."""
    lines = [InvoiceLine(f"Nhiệm vụ {n}", 1_001) for n in range(30)]
    invoice = gateway.create_invoice(customer_id=_customer(), statement_id=_statement(), version=1, currency="vnd",
                                     lines=lines, due_days=0)
    assert invoice.total == 30_030
    assert len(_lines_of(raw, invoice.id)) == 30


def test_charged_automatically_has_no_due_date(stripe_app, raw):
    invoice = gateway.create_invoice(customer_id=_customer(), statement_id=_statement(), version=1, currency="usd",
                                     lines=USD_LINES, due_days=14, collection="charge_automatically")
    stored = raw.v1.invoices.retrieve(invoice.id)
    assert (stored.collection_method, stored.due_date, stored.total) == ("charge_automatically", None, USD_TOTAL)


def test_a_retry_makes_one_invoice(stripe_app, raw):
    cid, statement = _customer(), _statement()
    kwargs = dict(customer_id=cid, statement_id=statement, version=1, currency="VND", lines=VND_LINES, due_days=14)
    first = gateway.create_invoice(**kwargs)
    again = gateway.create_invoice(**kwargs)
    assert again == first
    invoices = _invoices_of(raw, cid, statement)
    assert [i.id for i in invoices] == [first.id]
    assert len(_lines_of(raw, first.id)) == len(VND_LINES)  # no line added twice
    # A correction is a new version, and a new invoice.
    corrected = gateway.create_invoice(**{**kwargs, "version": 2})
    assert corrected.id != first.id
    assert len(_invoices_of(raw, cid, statement)) == 2


def test_a_run_killed_half_way_is_completed_not_repeated(stripe_app, raw):
    """An earlier attempt died after the draft and two of its five lines (made here as the gateway makes them)."""
    cid, statement = _customer(), _statement()
    metadata = {"statement_id": statement, "version": "1"}
    draft = raw.v1.invoices.create(params={"customer": cid, "currency": "vnd", "collection_method": "send_invoice",
                                           "days_until_due": 14, "auto_advance": False, "metadata": metadata})
    for number, line in enumerate(VND_LINES[:2]):
        raw.v1.invoice_items.create(params={"customer": cid, "invoice": draft.id, "currency": "vnd",
                                            "amount": line.amount_minor, "description": line.description,
                                            "metadata": {**metadata, "line": str(number)}})
    invoice = gateway.create_invoice(customer_id=cid, statement_id=statement, version=1, currency="VND",
                                     lines=VND_LINES, due_days=14)
    assert invoice.id == draft.id
    assert (invoice.status, invoice.total) == ("open", VND_TOTAL)
    assert _lines_of(raw, draft.id) == [(line.description, line.amount_minor, "vnd") for line in VND_LINES]


def test_a_draft_that_differs_from_the_statement_is_not_finalised(stripe_app, raw):
    """Someone added a line to the draft in the Dashboard: the gateway refuses to finalise it."""
    cid, statement = _customer(), _statement()
    metadata = {"statement_id": statement, "version": "1"}
    draft = raw.v1.invoices.create(params={"customer": cid, "currency": "usd", "collection_method": "send_invoice",
                                           "days_until_due": 14, "auto_advance": False, "metadata": metadata})
    raw.v1.invoice_items.create(params={"customer": cid, "invoice": draft.id, "currency": "usd", "amount": 999,
                                        "description": "Extra"})
    with pytest.raises(gateway.InvoiceMismatch, match="not finalised"):
        gateway.create_invoice(customer_id=cid, statement_id=statement, version=1, currency="USD",
                               lines=USD_LINES, due_days=14)
    assert raw.v1.invoices.retrieve(draft.id).status == "draft"


def test_bad_input_is_refused_before_anything_is_written(stripe_app):
    cid = _customer()
    common = dict(customer_id=cid, statement_id=_statement(), version=1, due_days=14)
    with pytest.raises(ValueError, match="at least one line"):
        gateway.create_invoice(currency="usd", lines=[], **common)
    with pytest.raises(ValueError, match="minor units"):
        gateway.create_invoice(currency="usd", lines=[InvoiceLine("Fee", 12.5)], **common)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="three-letter"):
        gateway.create_invoice(currency="dollars", lines=USD_LINES, **common)
    with pytest.raises(ValueError, match="at most 250"):
        gateway.create_invoice(currency="usd", lines=[InvoiceLine("x", 1)] * 251, **common)


def test_stripe_refusals_become_gateway_errors(stripe_app):
    with pytest.raises(gateway.StripeGatewayError) as refused:
        gateway.create_invoice(customer_id="cus_doesnotexist", statement_id=_statement(), version=1,
                               currency="usd", lines=USD_LINES, due_days=14)
    assert refused.value.retryable is False
    assert isinstance(refused.value.__cause__, stripe.StripeError)


def test_the_invoice_a_payment_paid_is_found_through_its_invoice_payment(stripe_app, raw):
    """Today's API: the paid invoice names no payment intent and the charge no invoice; invoice payments tie them."""
    cid, statement = _customer(), _statement()
    invoice = gateway.create_invoice(customer_id=cid, statement_id=statement, version=3, currency="USD",
                                     lines=USD_LINES, due_days=14)
    card = raw.v1.payment_methods.create(params={"type": "card", "card": {
        "number": "4242424242424242", "exp_month": 1, "exp_year": 2036, "cvc": "321"}})
    raw.v1.payment_methods.attach(card.id, params={"customer": cid})
    raw.v1.customers.update(cid, params={"invoice_settings": {"default_payment_method": card.id}})
    paid = raw.v1.invoices.pay(invoice.id)
    assert paid.status == "paid" and "payment_intent" not in paid.to_dict()
    intent = raw.v1.invoice_payments.list(params={"invoice": invoice.id}).data[0].payment.payment_intent
    assert gateway.invoice_paid_by(intent) == gateway.PaidInvoice(
        id=invoice.id, metadata={"statement_id": statement, "version": "3"})
    assert gateway.invoice_paid_by("pi_" + uuid.uuid4().hex[:14]) is None  # a payment of no invoice


# ---- the emulator's idempotency, which the gateway relies on ---------------------------------------------


def test_a_retried_post_gets_the_first_answer(stripe_app, raw):
    key = f"test-{uuid.uuid4()}"
    first = raw.v1.customers.create(params={"name": "Once"}, options={"idempotency_key": key})
    again = raw.v1.customers.create(params={"name": "Once"}, options={"idempotency_key": key})
    assert again.id == first.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(stripe.IdempotencyError):
        raw.v1.customers.create(params={"name": "Other"}, options={"idempotency_key": key})


# ---- payment-method pages --------------------------------------------------------------------------------


def _opens(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the emulator on loopback
        return response.status == 200


def test_the_customer_portal_url(stripe_app, stripe_emulator):
    url = gateway.setup_session_url(customer_id=_customer(), return_url="https://portal.example.com/billing")
    assert url.startswith(stripe_emulator.api_base + "/hosted/portal/")
    assert _opens(url)


def test_checkout_in_setup_mode(stripe_app, raw, stripe_emulator):
    cid = _customer()
    back = "https://portal.example.com/billing"
    url = gateway.setup_session_url(customer_id=cid, return_url=back, via="checkout", currency="VND")
    assert _opens(url)
    session = raw.v1.checkout.sessions.retrieve(url.rsplit("/", 1)[1])
    assert (session.mode, session.customer, session.currency, session.success_url) == ("setup", cid, "vnd", back)
    assert session.setup_intent.startswith("seti_")
    with pytest.raises(ValueError, match="currency"):
        gateway.setup_session_url(customer_id=cid, return_url=back, via="checkout")


# ---- webhooks --------------------------------------------------------------------------------------------


def _event() -> bytes:
    return json.dumps({"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": "invoice.paid",
                       "created": int(time.time()),
                       "data": {"object": {"id": "in_test", "object": "invoice", "status": "paid",
                                           "description": "Phí dịch vụ tháng 11"}}},
                      ensure_ascii=False).encode()


def _signature(payload: bytes, secret: str, timestamp: int) -> str:
    """Stripe's scheme, from its spec: v1 = hex HMAC-SHA256 over "<t>.<payload>" with the endpoint secret."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def test_a_validly_signed_event_is_accepted(stripe_app, stripe_emulator):
    payload = _event()
    event = gateway.verify_event(payload, _signature(payload, stripe_emulator.webhook_secret, int(time.time())))
    assert event == json.loads(payload)
    assert event["data"]["object"]["description"] == "Phí dịch vụ tháng 11"


def test_one_valid_signature_among_several_is_enough(stripe_app, stripe_emulator):
    """While a secret is rolled, Stripe signs with both; any matching v1 is accepted."""
    payload, now = _event(), int(time.time())
    wrong = _signature(payload, "whsec_old", now).split(",")[1]
    header = f"{_signature(payload, stripe_emulator.webhook_secret, now)},{wrong}"
    assert gateway.verify_event(payload, header)["object"] == "event"


@pytest.mark.parametrize("case", ["wrong secret", "payload changed", "no header", "no v1", "garbage"])
def test_a_bad_signature_is_refused(stripe_app, stripe_emulator, case):
    payload, now = _event(), int(time.time())
    header = {
        "wrong secret": _signature(payload, "whsec_someone_else", now),
        "payload changed": _signature(payload, stripe_emulator.webhook_secret, now),
        "no header": "",
        "no v1": f"t={now},v0={'0' * 64}",
        "garbage": "not a signature",
    }[case]
    body = payload.replace(b"paid", b"void") if case == "payload changed" else payload
    with pytest.raises(gateway.BadSignature):
        gateway.verify_event(body, header)


def test_a_stale_signature_is_refused(stripe_app, stripe_emulator):
    """Older than the 300 s tolerance: refused even though the signature itself is right."""
    payload, now = _event(), int(time.time())
    with pytest.raises(gateway.BadSignature, match="tolerance"):
        gateway.verify_event(payload, _signature(payload, stripe_emulator.webhook_secret, now - 301))
    # Just inside the tolerance it is accepted (a few seconds of slack for a slow test machine).
    assert gateway.verify_event(payload, _signature(payload, stripe_emulator.webhook_secret, now - 290))


def test_a_signed_payload_that_is_not_an_event_is_refused(stripe_app, stripe_emulator):
    payload = b'{"object": "customer", "id": "cus_1"}'
    with pytest.raises(gateway.BadSignature, match="not an event"):
        gateway.verify_event(payload, _signature(payload, stripe_emulator.webhook_secret, int(time.time())))
