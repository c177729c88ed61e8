"""Stripe behind one small interface: a customer per tenant, an invoice per statement, hosted card pages, webhooks.

Written against the current Stripe API of the pinned ``stripe`` library (``stripe.StripeClient``, its
``v1`` services). Configured from the app config: ``STRIPE_API_KEY`` (unset: Stripe is off and
``enabled()`` is false), ``STRIPE_WEBHOOK_SECRET`` and ``STRIPE_API_BASE`` (Stripe's own unless a test
points it at the emulator in ``tests/stripe_emulator.py``). Call it inside an application context.

Money: amounts are integers in the currency's minor unit as Stripe counts it (cents for USD; VND is a
zero-decimal currency in Stripe, so an amount in VND is a number of dong). Nothing here rounds.

A retry never bills twice. Every write carries an idempotency key derived from our ids (tenant,
statement and version, line number), so a retry within Stripe's 24 hours gets the first answer back;
and ``create_invoice`` first looks for the statement's invoice among the customer's invoices (by the
metadata it wrote), so a retry days later finds it and carries on from where the first attempt stopped.

Errors: every failure is a ``StripeGatewayError`` (the message says what failed; ``retryable`` says
whether the same call may succeed later); ``BadSignature`` for a webhook we refuse.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import stripe
from flask import current_app

DEFAULT_API_BASE = "https://api.stripe.com"
WEBHOOK_TOLERANCE_SECONDS = 300  # stripe's default: a signature older than this is refused as stale
MAX_INVOICE_LINES = 250  # Stripe's limit of invoice items on one invoice
NETWORK_RETRIES = 2  # the library retries connection errors and 409/429/5xx, with our idempotency keys

Collection = Literal["send_invoice", "charge_automatically"]


class StripeGatewayError(RuntimeError):
    """A Stripe call failed; ``retryable`` is true when the same call may succeed later."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class NotConfigured(StripeGatewayError):
    """Stripe is off (no ``STRIPE_API_KEY``) or the webhook secret is missing."""


class BadSignature(StripeGatewayError):
    """A webhook whose ``Stripe-Signature`` is missing, wrong or older than the tolerance."""


class InvoiceMismatch(StripeGatewayError):
    """Stripe's invoice does not hold exactly the statement's lines and total; it was not finalised."""


@dataclass(frozen=True)
class InvoiceLine:
    """One line of a statement as it goes on the Stripe invoice; ``amount_minor`` may be negative (a discount)."""

    description: str
    amount_minor: int


@dataclass(frozen=True)
class StripeInvoice:
    """What the statement keeps of its Stripe invoice."""

    id: str
    status: str  # draft, open, paid, uncollectible, void
    total: int  # minor units
    currency: str  # lowercase ISO code
    hosted_invoice_url: str | None  # where the client pays or downloads it
    number: str | None


@dataclass(frozen=True)
class PaidInvoice:
    """The invoice a payment paid: its id and the metadata we wrote on it (our statement id and version)."""

    id: str
    metadata: dict[str, str]


def enabled() -> bool:
    """Whether Stripe is configured (``STRIPE_API_KEY`` is set)."""
    return bool(current_app.config.get("STRIPE_API_KEY"))


def ensure_customer(*, tenant_id: str, name: str, email: str | None, customer_id: str | None) -> str:
    """The tenant's Stripe customer id: ``customer_id`` when it still exists, else a new customer.

    The caller stores the id it gets back and passes it next time. A customer that still exists keeps
    its id; its name and e-mail are brought up to date. A customer that was deleted in Stripe is
    replaced by a new one. Creating is keyed by the tenant, so a retry (say, the id was never stored
    because the job died) returns the same customer instead of a second one. A ``customer_id`` whose
    metadata names another tenant is refused: it was stored on the wrong tenant.
    """
    client = _client()
    with _errors("ensure the customer"):
        if customer_id:
            existing = _retrieve_customer(client, customer_id)
            if existing is not None:
                metadata = existing.metadata.to_dict() if getattr(existing, "metadata", None) else {}
                owner = metadata.get("tenant_id")
                if owner is not None and owner != tenant_id:
                    raise StripeGatewayError(f"Stripe customer {customer_id} belongs to another tenant")
                changes: dict[str, Any] = {}
                if getattr(existing, "name", None) != name:
                    changes["name"] = name
                if (getattr(existing, "email", None) or None) != email:
                    changes["email"] = email or ""  # an empty string unsets it
                if owner is None:
                    changes["metadata"] = {"tenant_id": tenant_id}
                if changes:
                    before = _digest(getattr(existing, "name", None), getattr(existing, "email", None))
                    client.v1.customers.update(
                        customer_id, params=changes,
                        options=_once("customer-update", customer_id, before, _digest(name, email)))
                return customer_id
        params: dict[str, Any] = {"name": name, "metadata": {"tenant_id": tenant_id}}
        if email:
            params["email"] = email
        # A replacement for a deleted customer gets a key of its own, or the key would answer the old one.
        created = client.v1.customers.create(params=params,
                                             options=_once("customer", tenant_id, customer_id or "first"))
        return created.id


def create_invoice(*, customer_id: str, statement_id: str, version: int, currency: str,
                   lines: list[InvoiceLine], due_days: int,
                   collection: Collection = "send_invoice") -> StripeInvoice:
    """The finalised Stripe invoice of a statement's version: exactly ``lines``, in ``currency``.

    One invoice item per line (in order, amounts in minor units), on a draft invoice with metadata
    ``{statement_id, version}``; then the draft is checked against ``lines`` (the same lines and a
    total equal to their sum, to the minor unit) and finalised with automatic collection on:
    ``send_invoice`` makes Stripe e-mail it, due ``due_days`` after today; ``charge_automatically``
    makes Stripe charge the customer's default payment method (``due_days`` does not apply).

    Safe to call again for the same statement and version (a retry, a resumed run): it finds the
    invoice it made, adds only the lines still missing, and returns the invoice as it is now without
    writing anything once it is finalised. Raises ``InvoiceMismatch`` (and leaves the draft unfinalised)
    when Stripe's draft differs from ``lines``, e.g. because someone edited it in the Dashboard.
    """
    currency = _currency(currency)
    _check_lines(lines)
    if collection not in ("send_invoice", "charge_automatically"):
        raise ValueError(f"collection must be send_invoice or charge_automatically, not {collection!r}")
    if collection == "send_invoice" and (isinstance(due_days, bool) or not isinstance(due_days, int)
                                         or due_days < 0):
        raise ValueError("due_days must be a whole number of days, 0 or more")
    ref = (str(statement_id), f"v{version}")
    metadata = {"statement_id": str(statement_id), "version": str(version)}
    client = _client()
    with _errors(f"invoice statement {statement_id} version {version}"):
        invoice = _find_invoice(client, customer_id, metadata)
        if invoice is None:
            params: dict[str, Any] = {
                "customer": customer_id, "currency": currency, "collection_method": collection,
                # Not advanced while we add its lines; finalising turns collection on.
                "auto_advance": False, "pending_invoice_items_behavior": "exclude", "metadata": metadata,
            }
            if collection == "send_invoice":
                params["days_until_due"] = due_days
            invoice = client.v1.invoices.create(params=params, options=_once("invoice", *ref))
        if invoice.status != "draft":
            # Finalised by an earlier attempt: report it as it is, after the same check.
            if invoice.currency != currency or invoice.total != sum(line.amount_minor for line in lines):
                raise InvoiceMismatch(f"Stripe invoice {invoice.id} does not match statement {statement_id} "
                                      f"version {version}: {invoice.total} {invoice.currency}")
            return _summary(invoice)
        present = {_line_number(item) for item in _invoice_lines(client, invoice.id)}
        for number, line in enumerate(lines):
            if number in present:
                continue
            client.v1.invoice_items.create(
                params={"customer": customer_id, "invoice": invoice.id, "currency": currency,
                        "amount": line.amount_minor, "description": line.description,
                        # The statement already holds its discounts; none of the customer's apply again.
                        "discountable": False,
                        "metadata": {**metadata, "line": str(number)}},
                options=_once("invoice-item", *ref, str(number)))
        _check_draft(client, invoice.id, currency, lines)
        finalised = client.v1.invoices.finalize_invoice(invoice.id, params={"auto_advance": True},
                                                        options=_once("invoice-finalize", *ref))
        return _summary(finalised)


def void_invoice(*, invoice_id: str, statement_id: str, version: int) -> str:
    """Void the open Stripe invoice of a statement version a correction replaced (so it cannot be paid any
    more); an invoice already paid or void is left as it is. Returns its status."""
    client = _client()
    with _errors("void an invoice"):
        invoice = client.v1.invoices.retrieve(invoice_id)
        if invoice.status != "open":
            return invoice.status
        return client.v1.invoices.void_invoice(invoice_id, options=_once("invoice-void", statement_id,
                                                                         f"v{version}")).status


def invoice_paid_by(payment_intent_id: str) -> PaidInvoice | None:
    """The invoice a payment intent paid, or None when it paid none (a charge that is not an invoice's).

    In today's API neither the invoice nor the charge names the other: a webhook's invoice carries no
    ``payment_intent`` (its ``payments`` are only included on request) and a charge no ``invoice``. The
    invoice payments tie them, so a refund or dispute, which names the payment intent, is traced here.
    """
    client = _client()
    with _errors("find the invoice of a payment"):
        found = client.v1.invoice_payments.list(params={
            "payment": {"type": "payment_intent", "payment_intent": payment_intent_id}, "limit": 1})
        if not found.data:
            return None
        invoice = found.data[0].invoice
        invoice_id = invoice if isinstance(invoice, str) else invoice.id
        metadata = client.v1.invoices.retrieve(invoice_id).metadata
    return PaidInvoice(id=invoice_id, metadata=metadata.to_dict() if metadata else {})


def setup_session_url(*, customer_id: str, return_url: str,
                      via: Literal["portal", "checkout"] = "portal", currency: str | None = None) -> str:
    """A Stripe-hosted page where the client adds or changes the payment method; card data never reaches us.

    ``via="portal"`` (default): the customer portal, straight into its payment-method flow; Stripe makes
    the new method the customer's default for invoices, then sends the client back to ``return_url``.
    Needs the customer portal saved once in the Stripe Dashboard (test and live mode each).
    ``via="checkout"``: Checkout in setup mode (``currency`` required); it only saves the method, so the
    ``checkout.session.completed`` webhook must set it as the customer's
    ``invoice_settings.default_payment_method``. Redirects to ``return_url`` when done or cancelled.

    Each call makes a new short-lived session, so no idempotency key: a retry makes a second page and
    nothing is billed.
    """
    client = _client()
    with _errors("open a payment-method page"):
        if via == "portal":
            session = client.v1.billing_portal.sessions.create(params={
                "customer": customer_id, "return_url": return_url,
                "flow_data": {"type": "payment_method_update",
                              "after_completion": {"type": "redirect", "redirect": {"return_url": return_url}}},
            })
        elif via == "checkout":
            if not currency:
                raise ValueError("Checkout in setup mode needs the currency of the payments it prepares")
            session = client.v1.checkout.sessions.create(params={
                "mode": "setup", "customer": customer_id, "currency": _currency(currency),
                "success_url": return_url, "cancel_url": return_url,
            })
        else:
            raise ValueError(f"via must be portal or checkout, not {via!r}")
        return session.url


def verify_event(payload: bytes, signature_header: str) -> dict[str, Any]:
    """The webhook's event as a dict, after checking its ``Stripe-Signature`` against ``STRIPE_WEBHOOK_SECRET``.

    The check is Stripe's (HMAC-SHA256 of ``"<t>.<payload>"`` with the secret, any ``v1`` signature
    matching, the timestamp no older than 300 s). Raises ``BadSignature`` for a missing, wrong or
    stale signature and for a payload that is not an event; ``NotConfigured`` without a secret.
    Applying an event once, and in the order of the object's state, is the caller's job.
    """
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    if not secret:
        raise NotConfigured("STRIPE_WEBHOOK_SECRET is not set: webhooks cannot be verified")
    try:
        stripe.WebhookSignature.verify_header(payload, signature_header, secret, WEBHOOK_TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as exc:
        raise BadSignature(f"Stripe webhook refused: {exc.user_message or exc}") from exc
    try:
        event = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadSignature("Stripe webhook refused: the payload is not JSON") from exc
    if not isinstance(event, dict) or event.get("object") != "event" or not event.get("id"):
        raise BadSignature("Stripe webhook refused: the payload is not an event")
    return event


# ---- inside --------------------------------------------------------------------------------------------


def _client() -> stripe.StripeClient:
    """One client per configuration, kept on the app (it holds an HTTP session)."""
    key = current_app.config.get("STRIPE_API_KEY")
    if not key:
        raise NotConfigured("Stripe is not configured (STRIPE_API_KEY is not set)")
    base = current_app.config.get("STRIPE_API_BASE") or DEFAULT_API_BASE
    clients: dict[tuple[str, str], stripe.StripeClient] = current_app.extensions.setdefault("stripe_gateway", {})
    if (key, base) not in clients:
        clients[(key, base)] = stripe.StripeClient(key, base_addresses={"api": base},
                                                   max_network_retries=NETWORK_RETRIES)
    return clients[(key, base)]


@contextmanager
def _errors(doing: str) -> Iterator[None]:
    """Stripe's exceptions as ``StripeGatewayError``, saying what we were doing and whether to retry."""
    try:
        yield
    except stripe.StripeError as exc:
        status = exc.http_status or 0
        retryable = isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)) or status >= 500 \
            or status == 409
        raise StripeGatewayError(f"Stripe: could not {doing}: {exc.user_message or exc}",
                                 retryable=retryable) from exc


def _once(*parts: str) -> stripe.RequestOptions:
    """Request options carrying the idempotency key made of our ids."""
    return {"idempotency_key": "portal:" + ":".join(parts)}


def _digest(*values: str | None) -> str:
    return hashlib.sha256("\x1f".join(v or "" for v in values).encode()).hexdigest()[:16]


def _currency(currency: str) -> str:
    code = (currency or "").strip().lower()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise ValueError(f"currency must be a three-letter ISO code, not {currency!r}")
    return code


def _check_lines(lines: list[InvoiceLine]) -> None:
    if not lines:
        raise ValueError("an invoice needs at least one line")
    if len(lines) > MAX_INVOICE_LINES:
        raise ValueError(f"Stripe takes at most {MAX_INVOICE_LINES} lines on one invoice, not {len(lines)}")
    for line in lines:
        if isinstance(line.amount_minor, bool) or not isinstance(line.amount_minor, int):
            raise ValueError(f"amount_minor must be an integer in minor units: {line!r}")
        if not line.description or not line.description.strip():
            raise ValueError(f"every line needs a description: {line!r}")


def _retrieve_customer(client: stripe.StripeClient, customer_id: str) -> stripe.Customer | None:
    """The customer, or None when it is deleted or unknown."""
    try:
        customer = client.v1.customers.retrieve(customer_id)
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            return None
        raise
    return None if getattr(customer, "deleted", False) else customer


def _find_invoice(client: stripe.StripeClient, customer_id: str, metadata: dict[str, str]) -> stripe.Invoice | None:
    """The customer's invoice carrying this statement's metadata, if an earlier attempt made one."""
    for invoice in client.v1.invoices.list(params={"customer": customer_id, "limit": 100}).auto_paging_iter():
        found = invoice.metadata.to_dict() if getattr(invoice, "metadata", None) else {}
        if all(found.get(k) == v for k, v in metadata.items()):
            return invoice
    return None


def _invoice_lines(client: stripe.StripeClient, invoice_id: str) -> list[stripe.InvoiceLineItem]:
    return list(client.v1.invoices.line_items.list(invoice_id, params={"limit": 100}).auto_paging_iter())


def _line_number(item: stripe.InvoiceLineItem) -> int | None:
    metadata = item.metadata.to_dict() if getattr(item, "metadata", None) else {}
    number = metadata.get("line")
    return int(number) if number is not None and number.isdigit() else None


def _check_draft(client: stripe.StripeClient, invoice_id: str, currency: str, lines: list[InvoiceLine]) -> None:
    """Refuse to finalise a draft that does not hold exactly ``lines`` (in order) and their sum."""
    found = sorted(_invoice_lines(client, invoice_id), key=lambda item: (_line_number(item) is None,
                                                                         _line_number(item) or 0))
    got = [(item.description, item.amount, item.currency) for item in found]
    want = [(line.description, line.amount_minor, currency) for line in lines]
    invoice = client.v1.invoices.retrieve(invoice_id)
    expected_total = sum(line.amount_minor for line in lines)
    if got != want or invoice.total != expected_total or invoice.currency != currency:
        raise InvoiceMismatch(f"Stripe draft invoice {invoice_id} does not match the statement: "
                              f"{len(got)} lines totalling {invoice.total} {invoice.currency}, expected "
                              f"{len(want)} lines totalling {expected_total} {currency}; it was not finalised")


def _summary(invoice: stripe.Invoice) -> StripeInvoice:
    return StripeInvoice(id=invoice.id, status=invoice.status, total=invoice.total, currency=invoice.currency,
                         hosted_invoice_url=getattr(invoice, "hosted_invoice_url", None),
                         number=getattr(invoice, "number", None))
