"""A Stripe emulator on loopback for the test run: localstripe, plus what the billing code needs of today's API.

localstripe (https://github.com/adrienverge/localstripe) speaks an older Stripe API. Its aiohttp
application is imported here and served together with the endpoints it lacks, modelled on Stripe's API
reference (same paths, parameters and response shapes), so that ``portal/billing/stripe_gateway.py``
is written against the real API and driven by the real ``stripe`` library, never bent to the emulator.

The emulator runs as a child process (``StripeEmulator``), on a free loopback port, with its store in
memory only (localstripe would otherwise pickle it to ``/tmp/localstripe.pickle``, a file that runs
side by side would share).

Stripe calls served natively by localstripe (used as they are):
    POST /v1/customers, GET /v1/customers (pagination), GET /v1/customers/{id}, POST /v1/customers/{id},
    DELETE /v1/customers/{id}
    GET /v1/invoices (``customer`` filter, pagination), GET /v1/invoices/{id}
    POST /v1/payment_methods, POST /v1/payment_methods/{id}/attach
    GET /v1/events, GET /v1/events/{id}; everything else localstripe serves (payment methods, setup
    intents, subscriptions, ...) is passed through untouched.

Stripe calls added or replaced here:
    POST /v1/invoices               replaced: a one-off draft invoice as today's API makes it
                                    (``collection_method``, ``days_until_due``/``due_date``, ``currency``,
                                    ``auto_advance``, ``pending_invoice_items_behavior`` defaulting to
                                    ``exclude``, ``metadata``); localstripe only builds subscription
                                    invoices from pending items. A ``subscription`` still goes to localstripe.
    POST /v1/invoiceitems           replaced: honours ``invoice`` (the item is added to that draft invoice,
                                    same currency and customer, at most 250 items), ``period`` and
                                    ``discountable`` (kept on the item; discounts are not emulated).
    GET  /v1/invoices/{id}/lines    replaced: honours ``starting_after``/``ending_before`` so the
                                    library's auto-pagination works (localstripe refused them).
    POST /v1/invoices/{id}/finalize added: draft -> open (paid when the total is 0), with ``number``,
                                    ``hosted_invoice_url``, ``invoice_pdf``, ``status_transitions.finalized_at``,
                                    ``auto_advance``; an ``invoice.finalized`` event. Automatic collection after
                                    finalisation is not simulated: ``POST /v1/invoices/{id}/pay`` charges.
    POST /v1/invoices/{id}/void     replaced: open -> void for the one-off invoices above (localstripe's own
                                    cancels a payment intent they do not have), with ``invoice.voided``.
    POST /v1/invoices/{id}/pay      replaced: localstripe's payment (the customer's default payment method, through
                                    a payment intent), plus the ``invoice.paid`` event and an invoice payment.
    GET  /v1/invoice_payments       added: ``invoice``, ``payment[type]``/``payment[payment_intent]``, ``status``,
                                    ``limit``, ``starting_after``; how today's API ties an invoice to the payment
                                    intent that paid it. One-off invoices no longer carry ``payment_intent`` or
                                    ``charge`` (``expand[]=payments`` includes their payments).
    POST /v1/refunds                replaced: localstripe's refund of what is left of the charge (never more),
                                    plus the ``charge.refunded`` event.
    POST /v1/checkout/sessions      added, ``mode=setup`` only (with a SetupIntent for the customer);
    GET  /v1/checkout/sessions/{id} added.
    POST /v1/billing_portal/sessions added (``customer``, ``return_url``, ``flow_data``, ``locale``).
    Idempotency-Key                 added for every POST: a retry with the same key and parameters gets the
                                    first answer again (``Idempotent-Replayed: true``); the same key with other
                                    parameters is refused with an ``idempotency_error``; a key still in flight
                                    answers 409. As on Stripe, refusals of the request itself (400, 401, 404,
                                    409, 429) are not remembered.
    GET /hosted/...                 stand-ins for Stripe's hosted pages (invoice, Checkout, portal), so a URL
                                    the gateway returns can be opened.
"""

from __future__ import annotations

import argparse
import hashlib
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

API_KEY = "sk_test_emulator"  # localstripe accepts any key that starts with sk_
WEBHOOK_SECRET = "whsec_test_emulator"  # noqa: S105 - a test value, never a real secret

MAX_INVOICE_ITEMS = 250


def build_app():  # noqa: ANN201, C901, PLR0915 - an aiohttp Application; the routes are defined inside
    """localstripe's aiohttp application with the endpoints above added or replaced."""
    import random
    import string

    from aiohttp import web
    from localstripe import resources, server
    from localstripe.errors import UserError
    from localstripe.resources import (
        Charge,
        Customer,
        Event,
        Invoice,
        InvoiceItem,
        InvoiceLineItem,
        List,
        PaymentIntent,
        Refund,
        SetupIntent,
        StripeObject,
        schedule_webhook,
        store,
    )

    # Keep the store in memory: runs side by side must not share localstripe's pickle file.
    resources.Store.dump_to_disk = lambda self: None
    store.clear()

    def token(n: int) -> str:
        return "".join(random.choice(string.ascii_letters + string.digits) for _ in range(n))  # noqa: S311

    def respond(obj: Any, expand: Any = None, status: int = 200) -> web.Response:
        body = obj._export(expand=expand) if hasattr(obj, "_export") else obj
        return server.json_response(body, status=status)

    def as_int(value: Any, name: str, *, minimum: int | None = None) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise UserError(400, f"Invalid integer: {name}") from None
        if minimum is not None and number < minimum:
            raise UserError(400, f"Invalid {name}: must be at least {minimum}")
        return number

    def as_bool(value: Any, name: str) -> bool:
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise UserError(400, f"Invalid boolean: {name}")

    def as_metadata(value: Any) -> dict[str, str]:
        if value in (None, ""):
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise UserError(400, "Invalid metadata: must be a hash of strings")
        return dict(value)

    def as_currency(value: Any) -> str:
        if not isinstance(value, str) or len(value) != 3 or not value.isalpha() or value != value.lower():
            raise UserError(400, "Invalid currency: a three-letter ISO code in lowercase")
        return value

    def unexpected(params: dict[str, Any]) -> None:
        if params:
            raise UserError(400, "Received unknown parameter: " + ", ".join(sorted(params)))

    # ---- invoices as today's API makes them ------------------------------------------------------------

    class OneOffInvoice(Invoice):
        """A one-off invoice (no subscription) with the fields today's API returns.

        Built without ``Invoice.__init__``, which pulls in every pending item of the customer (the
        behaviour of ``pending_invoice_items_behavior=include``, no longer the default).
        """

        def __init__(self, *, customer: Customer, currency: str, collection_method: str,
                     days_until_due: int | None, due_date: int | None, auto_advance: bool,
                     metadata: dict[str, str], description: str | None, pending: list[InvoiceItem]) -> None:
            StripeObject.__init__(self)
            self.customer = customer.id
            self.customer_email = customer.email
            self.customer_name = customer.name
            self.subscription = None
            self.tax_percent = None
            self.default_tax_rates = None
            self.date = self.created
            self.metadata = metadata
            self.payment_intent = None
            self.application_fee = None
            self.attempt_count = 0
            self.attempted = False
            self.billing_reason = "manual"
            self.collection_method = collection_method
            self.days_until_due = days_until_due
            self.due_date = due_date
            self.auto_advance = auto_advance
            self.description = description
            self.discount = None
            self.number = None
            self.hosted_invoice_url = None
            self.invoice_pdf = None
            self.receipt_number = None
            self.starting_balance = 0
            self.statement_descriptor = None
            self.webhooks_delivered_at = None
            self.status_transitions = {"finalized_at": None, "marked_uncollectible_at": None,
                                       "paid_at": None, "voided_at": None}
            self.period_start = self.period_end = self.created
            self.currency = currency
            self.lines = List("/v1/invoices/" + self.id + "/lines")
            self._draft = True
            self._voided = False
            for item in pending:
                self._attach(item)
            self.ending_balance = None
            schedule_webhook(Event("invoice.created", self))

        def _attach(self, item: InvoiceItem) -> None:
            item.invoice = self.id
            self.lines._list.append(InvoiceLineItem(item))

        @property
        def amount_remaining(self) -> int:
            return self.amount_due - self.amount_paid

        def _export(self, expand: list[str] | None = None) -> dict[str, Any]:
            # Today's API: an invoice no longer names ``payment_intent`` or ``charge``; its payments are the
            # includable ``payments`` list (``expand[]=payments``), absent from webhook payloads.
            expand = list(expand or [])
            include_payments = "payments" in expand
            obj = super()._export(expand=[path for path in expand if path != "payments"])
            obj.pop("payment_intent", None)
            obj.pop("charge", None)
            if include_payments:
                found = [p for p in invoice_payments.values() if p["invoice"] == self.id]
                obj["payments"] = {"object": "list", "url": f"/v1/invoice_payments?invoice={self.id}",
                                   "has_more": False, "data": found}
            return obj

    invoice_numbers: dict[str, int] = {}

    async def create_invoice(request: web.Request) -> web.Response:
        params = await server.get_post_data(request) or {}
        if params.get("subscription") is not None:
            # Subscription invoices: localstripe's own behaviour.
            expand = params.pop("expand", None)
            return respond(Invoice._api_create(**params), expand)
        expand = params.pop("expand", None)
        customer_id = params.pop("customer", None)
        if not isinstance(customer_id, str) or not customer_id:
            raise UserError(400, "Missing required param: customer.")
        customer = Customer._api_retrieve(customer_id)
        collection_method = params.pop("collection_method", "charge_automatically")
        if collection_method not in ("charge_automatically", "send_invoice"):
            raise UserError(400, "Invalid collection_method: must be one of charge_automatically, send_invoice")
        days_until_due = params.pop("days_until_due", None)
        due_date = params.pop("due_date", None)
        now = int(time.time())
        if collection_method == "send_invoice":
            if days_until_due is None and due_date is None:
                raise UserError(400, "Invoices with collection_method=send_invoice need days_until_due or due_date.")
            if days_until_due is not None and due_date is not None:
                raise UserError(400, "Give either days_until_due or due_date, not both.")
            if days_until_due is not None:
                days_until_due = as_int(days_until_due, "days_until_due", minimum=0)
                due_date = now + days_until_due * 86400
            else:
                due_date = as_int(due_date, "due_date", minimum=now)
        elif days_until_due is not None or due_date is not None:
            raise UserError(400, "days_until_due and due_date are only valid when collection_method=send_invoice.")
        currency = as_currency(params.pop("currency", "usd"))
        auto_advance = as_bool(params.pop("auto_advance", "false"), "auto_advance")
        metadata = as_metadata(params.pop("metadata", None))
        description = params.pop("description", None)
        behavior = params.pop("pending_invoice_items_behavior", "exclude")
        if behavior not in ("include", "exclude"):
            raise UserError(400, "Invalid pending_invoice_items_behavior: must be one of include, exclude")
        unexpected(params)
        pending = []
        if behavior == "include":
            pending = [ii for key, ii in list(store.items())
                       if key.startswith("invoiceitem:") and ii.customer == customer.id and ii.invoice is None
                       and ii.currency == currency]
        invoice = OneOffInvoice(customer=customer, currency=currency, collection_method=collection_method,
                                days_until_due=days_until_due, due_date=due_date, auto_advance=auto_advance,
                                metadata=metadata, description=description, pending=pending)
        return respond(invoice, expand)

    async def create_invoice_item(request: web.Request) -> web.Response:
        params = await server.get_post_data(request) or {}
        expand = params.pop("expand", None)
        invoice_id = params.get("invoice")
        period = params.pop("period", None)
        if isinstance(period, dict):
            params["period_start"] = period.get("start")
            params["period_end"] = period.get("end")
        discountable = as_bool(params.pop("discountable", "true"), "discountable")
        if not params.get("customer") and invoice_id:
            params["customer"] = Invoice._api_retrieve(invoice_id).customer
        if invoice_id is None:
            item = InvoiceItem(**params)
            item.discountable = discountable
            return respond(item, expand)
        invoice = Invoice._api_retrieve(invoice_id)
        if not isinstance(invoice, OneOffInvoice):
            raise UserError(400, "This emulator adds items only to one-off invoices it created.")
        if invoice.status != "draft":
            raise UserError(400, f"You can only add invoice items to draft invoices; {invoice.id} is {invoice.status}.")
        if params.get("customer") != invoice.customer:
            raise UserError(400, "The invoice item's customer must be the invoice's customer.")
        if params.get("currency") != invoice.currency:
            raise UserError(400, f"The invoice item's currency must be the invoice's currency ({invoice.currency}).")
        if len(invoice.lines._list) >= MAX_INVOICE_ITEMS:
            raise UserError(400, f"An invoice holds at most {MAX_INVOICE_ITEMS} invoice items.")
        item = InvoiceItem(**params)
        # Discounts are not emulated; the flag is kept so that the item reads back as Stripe returns it.
        item.discountable = discountable
        invoice._attach(item)
        return respond(item, expand)

    def list_invoice_lines(request: web.Request) -> web.Response:
        invoice = Invoice._api_retrieve(request.match_info["id"])
        params = server.unflatten_data(request.query)
        params.pop("expand", None)
        limit = as_int(params.pop("limit", 10), "limit", minimum=1)
        starting_after = params.pop("starting_after", None)
        ending_before = params.pop("ending_before", None)
        unexpected(params)
        lines = list(invoice.lines._list)
        ids = [line.id for line in lines]
        start, end = 0, len(lines)
        if starting_after is not None:
            start = ids.index(starting_after) + 1 if starting_after in ids else len(lines)
        if ending_before is not None:
            end = ids.index(ending_before) if ending_before in ids else 0
            start = max(start, end - limit)
        page = lines[start:min(end, start + limit)]
        has_more = (start + len(page) < end) if ending_before is None else start > 0
        return server.json_response({"object": "list", "url": f"/v1/invoices/{invoice.id}/lines",
                                     "has_more": has_more, "data": [line._export() for line in page]})

    async def finalize_invoice(request: web.Request) -> web.Response:
        invoice = Invoice._api_retrieve(request.match_info["id"])
        params = await server.get_post_data(request) or {}
        expand = params.pop("expand", None)
        auto_advance = params.pop("auto_advance", None)
        unexpected(params)
        if not isinstance(invoice, OneOffInvoice):
            raise UserError(400, "This emulator finalises only one-off invoices it created.")
        if invoice.status != "draft":
            raise UserError(400, f"This invoice is already finalized ({invoice.status}); only drafts can be finalized.")
        now = int(time.time())
        invoice._draft = False
        if auto_advance is not None:
            invoice.auto_advance = as_bool(auto_advance, "auto_advance")
        prefix = hashlib.sha256(invoice.customer.encode()).hexdigest()[:8].upper()
        invoice_numbers[prefix] = invoice_numbers.get(prefix, 0) + 1
        invoice.number = f"{prefix}-{invoice_numbers[prefix]:04d}"
        origin = f"{request.scheme}://{request.host}"
        invoice.hosted_invoice_url = f"{origin}/hosted/invoice/{invoice.id}"
        invoice.invoice_pdf = f"{origin}/hosted/invoice/{invoice.id}/pdf"
        invoice.status_transitions["finalized_at"] = now
        invoice.webhooks_delivered_at = now
        schedule_webhook(Event("invoice.finalized", invoice))
        if invoice.status == "paid":  # a zero total is paid on finalisation
            invoice.status_transitions["paid_at"] = now
            invoice.auto_advance = False
            schedule_webhook(Event("invoice.paid", invoice))
        return respond(invoice, expand)

    async def void_invoice(request: web.Request) -> web.Response:
        # Stripe: an open (finalised, unpaid) invoice can be voided; it then can never be paid. localstripe's own
        # void cancels the invoice's payment intent, which one-off invoices of this emulator do not have.
        invoice = Invoice._api_retrieve(request.match_info["id"])
        params = await server.get_post_data(request) or {}
        expand = params.pop("expand", None)
        unexpected(params)
        if not isinstance(invoice, OneOffInvoice):
            raise UserError(400, "This emulator voids only one-off invoices it created.")
        if invoice.status != "open":
            raise UserError(400, f"You can only pass in open invoices. This invoice isn't open ({invoice.status}).")
        invoice._voided = True
        invoice.auto_advance = False
        invoice.status_transitions["voided_at"] = int(time.time())
        schedule_webhook(Event("invoice.voided", invoice))
        return respond(invoice, expand)

    # ---- paying an invoice, its invoice payments, refunds ------------------------------------------------

    invoice_payments: dict[str, dict[str, Any]] = {}

    async def pay_invoice(request: web.Request) -> web.Response:
        # localstripe charges the customer's default payment method through a payment intent; added here:
        # the ``invoice.paid`` event Stripe sends beside ``invoice.payment_succeeded``, and the invoice payment
        # that ties the invoice to its payment intent in today's API.
        params = await server.get_post_data(request) or {}
        expand = params.pop("expand", None)
        unexpected(params)
        invoice = Invoice._api_pay_invoice(request.match_info["id"])
        if isinstance(invoice, OneOffInvoice) and invoice.status == "paid" and invoice.payment_intent:
            now = int(time.time())
            record = {"id": "inpay_" + token(14), "object": "invoice_payment", "amount_paid": invoice.total,
                      "amount_requested": invoice.total, "created": now, "currency": invoice.currency,
                      "invoice": invoice.id, "is_default": True, "livemode": False,
                      "payment": {"type": "payment_intent", "payment_intent": invoice.payment_intent},
                      "status": "paid", "status_transitions": {"canceled_at": None, "paid_at": now}}
            invoice_payments[record["id"]] = record
            schedule_webhook(Event("invoice.paid", invoice))
        return respond(invoice, expand)

    def list_invoice_payments(request: web.Request) -> web.Response:
        params = server.unflatten_data(request.query)
        params.pop("expand", None)
        invoice_id = params.pop("invoice", None)
        payment = params.pop("payment", None)
        status = params.pop("status", None)
        limit = as_int(params.pop("limit", 10), "limit", minimum=1)
        starting_after = params.pop("starting_after", None)
        unexpected(params)
        if payment is not None and (not isinstance(payment, dict) or payment.get("type") not in
                                    ("payment_intent", "payment_record")):
            raise UserError(400, "Invalid payment: give payment[type] (payment_intent or payment_record)")
        found = [p for p in invoice_payments.values()
                 if (invoice_id is None or p["invoice"] == invoice_id) and (status is None or p["status"] == status)
                 and (payment is None or all(p["payment"].get(k) == v for k, v in payment.items()))]
        found.sort(key=lambda p: (-p["created"], p["id"]))
        ids = [p["id"] for p in found]
        start = ids.index(starting_after) + 1 if starting_after in ids else 0
        page = found[start:start + limit]
        return server.json_response({"object": "list", "url": "/v1/invoice_payments",
                                     "has_more": start + len(page) < len(found), "data": page})

    async def create_refund(request: web.Request) -> web.Response:
        # localstripe makes the refund but sends no event; Stripe sends ``charge.refunded`` with the charge.
        params = await server.get_post_data(request) or {}
        expand = params.pop("expand", None)
        if params.get("charge") is None and params.get("payment_intent") is not None:
            charge = PaymentIntent._api_retrieve(params["payment_intent"]).latest_charge
        else:
            charge = Charge._api_retrieve(params.get("charge"))
        # As Stripe: no amount refunds what is left of the charge, and never more than that.
        left = charge.amount - charge.amount_refunded
        amount = as_int(params.get("amount", left), "amount", minimum=1)
        if amount > left:
            raise UserError(400, f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})")
        params["amount"] = amount
        refund = Refund._api_create(**params)
        schedule_webhook(Event("charge.refunded", Charge._api_retrieve(refund.charge)))
        return respond(refund, expand)

    # ---- Checkout in setup mode, and the customer portal -----------------------------------------------

    checkout_sessions: dict[str, dict[str, Any]] = {}

    async def create_checkout_session(request: web.Request) -> web.Response:
        params = await server.get_post_data(request) or {}
        params.pop("expand", None)
        mode = params.pop("mode", None)
        if mode is None:
            raise UserError(400, "Missing required param: mode.")
        if mode != "setup":
            raise UserError(400, f"This emulator serves Checkout in setup mode only, not mode={mode}.")
        customer_id = params.pop("customer", None)
        if customer_id is not None:
            Customer._api_retrieve(customer_id)
        ui_mode = params.pop("ui_mode", "hosted_page")
        if ui_mode not in ("hosted_page", "hosted"):
            raise UserError(400, f"This emulator serves hosted Checkout pages only, not ui_mode={ui_mode}.")
        success_url = params.pop("success_url", None)
        cancel_url = params.pop("cancel_url", None)
        if not success_url:
            raise UserError(400, "Missing required param: success_url.")
        allowed = params.pop("allowed_payment_method_types", None) or params.pop("payment_method_types", None)
        currency = params.pop("currency", None)
        if allowed is None and currency is None:
            raise UserError(400, "currency is required in setup mode when allowed_payment_method_types is not set.")
        if currency is not None:
            currency = as_currency(currency)
        metadata = as_metadata(params.pop("metadata", None))
        client_reference_id = params.pop("client_reference_id", None)
        locale = params.pop("locale", None)
        setup_intent_data = params.pop("setup_intent_data", None) or {}
        unexpected(params)
        intent = SetupIntent(customer=customer_id, metadata=as_metadata(setup_intent_data.get("metadata")))
        now = int(time.time())
        session_id = "cs_test_" + token(58)
        origin = f"{request.scheme}://{request.host}"
        session = {
            "id": session_id, "object": "checkout.session", "mode": "setup", "status": "open",
            "payment_status": "no_payment_required", "customer": customer_id, "currency": currency,
            "setup_intent": intent.id, "payment_intent": None, "subscription": None, "invoice": None,
            "success_url": success_url.replace("{CHECKOUT_SESSION_ID}", session_id), "cancel_url": cancel_url,
            "client_reference_id": client_reference_id, "locale": locale, "metadata": metadata,
            "ui_mode": ui_mode, "created": now, "expires_at": now + 24 * 3600, "livemode": False,
            "amount_subtotal": None, "amount_total": None,
            "url": f"{origin}/hosted/checkout/{session_id}",
        }
        checkout_sessions[session_id] = session
        return server.json_response(session)

    def retrieve_checkout_session(request: web.Request) -> web.Response:
        session = checkout_sessions.get(request.match_info["id"])
        if session is None:
            raise UserError(404, f"No such checkout.session: '{request.match_info['id']}'")
        return server.json_response(session)

    portal_sessions: dict[str, dict[str, Any]] = {}

    async def create_portal_session(request: web.Request) -> web.Response:
        params = await server.get_post_data(request) or {}
        params.pop("expand", None)
        customer_id = params.pop("customer", None)
        if not customer_id:
            raise UserError(400, "Missing required param: customer.")
        Customer._api_retrieve(customer_id)
        return_url = params.pop("return_url", None)
        flow_data = params.pop("flow_data", None)
        flow = None
        if flow_data is not None:
            kinds = ("customer_update", "payment_method_update", "subscription_cancel", "subscription_pause",
                     "subscription_update", "subscription_update_confirm")
            if not isinstance(flow_data, dict) or flow_data.get("type") not in kinds:
                raise UserError(400, "Invalid flow_data[type]: must be one of " + ", ".join(kinds))
            after = flow_data.get("after_completion") or {"type": "portal_homepage"}
            if after.get("type") not in ("hosted_confirmation", "portal_homepage", "redirect"):
                raise UserError(400, "Invalid flow_data[after_completion][type]")
            if after["type"] == "redirect" and not (after.get("redirect") or {}).get("return_url"):
                raise UserError(400, "Missing required param: flow_data[after_completion][redirect][return_url].")
            if after["type"] != "redirect" and not return_url:
                raise UserError(400, "Missing required param: return_url.")
            flow = {"type": flow_data["type"],
                    "after_completion": {"type": after["type"],
                                         "redirect": after.get("redirect") if after["type"] == "redirect" else None,
                                         "hosted_confirmation": after.get("hosted_confirmation")}}
        locale = params.pop("locale", None)
        configuration = params.pop("configuration", None) or "bpc_test_emulator_default"
        params.pop("on_behalf_of", None)
        unexpected(params)
        session_id = "bps_" + token(24)
        origin = f"{request.scheme}://{request.host}"
        session = {"id": session_id, "object": "billing_portal.session", "configuration": configuration,
                   "created": int(time.time()), "customer": customer_id, "flow": flow, "livemode": False,
                   "locale": locale, "on_behalf_of": None, "return_url": return_url,
                   "url": f"{origin}/hosted/portal/session/test_{token(40)}"}
        portal_sessions[session_id] = session
        return server.json_response(session)

    def hosted_page(request: web.Request) -> web.Response:
        return web.Response(text=f"<!doctype html><title>Stripe emulator</title><p>{request.path}</p>",
                            content_type="text/html")

    # ---- idempotency ------------------------------------------------------------------------------------

    remembered: dict[tuple[str, str], tuple[str, int, bytes, str]] = {}
    in_flight: set[tuple[str, str]] = set()
    not_remembered = {400, 401, 404, 409, 429}

    def idempotency_error(status: int, message: str) -> web.Response:
        return server.json_response({"error": {"type": "idempotency_error", "message": message}}, status=status)

    @web.middleware
    async def idempotency(request: web.Request, handler):  # noqa: ANN001, ANN202
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        scope = (request.headers.get("Authorization", ""), key)
        fingerprint = hashlib.sha256(request.method.encode() + b" " + request.path.encode() + b"?"
                                     + await request.read()).hexdigest()
        if scope in in_flight:
            return idempotency_error(409, "There is currently another in-progress request using this "
                                          f"idempotency key ('{key}'). Try again later.")
        if scope in remembered:
            first, status, body, content_type = remembered[scope]
            if first != fingerprint:
                return idempotency_error(400, "Keys for idempotent requests can only be used with the same "
                                              f"parameters they were first used with. Try using a key other "
                                              f"than '{key}' if you meant to execute a different request.")
            return web.Response(body=body, status=status, content_type=content_type,
                                headers={"Idempotent-Replayed": "true", "Idempotency-Key": key})
        in_flight.add(scope)
        try:
            response = await handler(request)
        finally:
            in_flight.discard(scope)
        if response.status not in not_remembered and isinstance(response, web.Response):
            remembered[scope] = (fingerprint, response.status, response.body, response.content_type)
        response.headers["Idempotency-Key"] = key
        return response

    @web.middleware
    async def auth(request: web.Request, handler):  # noqa: ANN001, ANN202
        if request.path.startswith("/hosted/"):  # Stripe's hosted pages need no API key
            return await handler(request)
        return await server.auth_middleware(request, handler)

    # ---- the application --------------------------------------------------------------------------------

    app = web.Application(middlewares=[idempotency, server.error_middleware, auth])
    app.on_response_prepare.append(server.add_cors_headers)
    ours = [
        ("POST", "/v1/invoices", create_invoice),
        ("POST", "/v1/invoiceitems", create_invoice_item),
        ("GET", "/v1/invoices/{id}/lines", list_invoice_lines),
        ("POST", "/v1/invoices/{id}/finalize", finalize_invoice),
        ("POST", "/v1/invoices/{id}/void", void_invoice),
        ("POST", "/v1/invoices/{id}/pay", pay_invoice),
        ("GET", "/v1/invoice_payments", list_invoice_payments),
        ("POST", "/v1/refunds", create_refund),
        ("POST", "/v1/checkout/sessions", create_checkout_session),
        ("GET", "/v1/checkout/sessions/{id}", retrieve_checkout_session),
        ("POST", "/v1/billing_portal/sessions", create_portal_session),
        ("GET", "/hosted/{path:.*}", hosted_page),
    ]
    replaced = {(method, path) for method, path, _ in ours}
    for method, path, handler in ours:
        app.router.add_route(method, path, handler)
    for route in server.app.router.routes():
        path = route.resource.canonical if route.resource is not None else None
        if path is None or (route.method, path) in replaced:
            continue
        app.router.add_route(route.method, path, route.handler)
    return app


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StripeEmulator:
    """The emulator as a child process on a free loopback port, for the whole test run.

    ``api_base`` goes into ``STRIPE_API_BASE``; ``api_key`` (any ``sk_`` key works) and
    ``webhook_secret`` are the test values for ``STRIPE_API_KEY`` and ``STRIPE_WEBHOOK_SECRET``.
    """

    api_key = API_KEY
    webhook_secret = WEBHOOK_SECRET

    def __init__(self) -> None:
        self.port = _free_port()
        self.api_base = f"http://127.0.0.1:{self.port}"
        # Its errors go to a file, not a pipe nobody reads (a full pipe would block it).
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - open as long as the process, closed in stop()
        self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and file
            [sys.executable, str(Path(__file__).resolve()), "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=self._log,
        )
        deadline = time.monotonic() + 30
        while not _port_open(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                log = self.log()
                self.stop()
                raise RuntimeError(f"the Stripe emulator did not start on loopback:\n{log[-2000:]}")
            time.sleep(0.1)

    def config(self) -> dict[str, str]:
        """Settings for the portal's configuration (``STRIPE_*`` names) pointing at this emulator."""
        return {"STRIPE_API_KEY": self.api_key, "STRIPE_WEBHOOK_SECRET": self.webhook_secret,
                "STRIPE_API_BASE": self.api_base}

    def log(self) -> str:
        """What the emulator wrote on stderr (tracebacks of requests it failed)."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        self._log.close()


def main() -> None:
    """Serve the emulator on 127.0.0.1 (``python tests/stripe_emulator.py --port N``)."""
    from aiohttp import web

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(build_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
