"""Stripe's webhook endpoint, and the client admin's way to Stripe's payment-method page.

Thin: each view calls one service of ``portal.billing.stripe_billing``. The webhook is public (Stripe
signs it; no session, so no CSRF token either) and rate-limited; when Stripe is off it does not exist.
"""

from __future__ import annotations

from flask import abort, current_app, flash, g, jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from portal.access import public, requires
from portal.billing import answers, bp, stripe_billing
from portal.billing import stripe_gateway as gateway
from portal.extensions import csrf, db, limiter


@bp.app_context_processor
def _stripe_helpers() -> dict:
    return {"stripe_on": gateway.enabled}


@bp.route("/billing/stripe/webhook", methods=["POST"])
@public
@limiter.limit(lambda: current_app.config["STRIPE_WEBHOOK_LIMIT"])
def stripe_webhook() -> ResponseReturnValue:
    """One Stripe event: 400 for a bad or stale signature (audited), 200 once it is recorded (even a duplicate)."""
    if not gateway.enabled():
        abort(404)
    try:
        outcome = stripe_billing.receive_webhook(request.get_data(), request.headers.get("Stripe-Signature"),
                                                 ip=request.remote_addr)
    except gateway.BadSignature:
        return jsonify(error="The Stripe-Signature header is missing, wrong or too old."), 400
    except gateway.NotConfigured:
        abort(404)
    if outcome == "retry_later":  # Stripe could not be asked which invoice it is about: it delivers it again
        return jsonify(received=False, outcome=outcome), 409
    return jsonify(received=True, outcome=outcome)


# Stripe posts with its signature, not a session: there is no CSRF token to check, and no cookie to ride.
csrf.exempt(stripe_webhook)


@bp.route("/t/<tenant_slug>/statements/<statement_id>/payment-method", methods=["POST"])
@requires("tenant:statements.pay")
def statement_payment_method(tenant_slug: str, statement_id: str) -> ResponseReturnValue:
    """Send the client admin to Stripe's page to pay by card or change the payment method; back here after."""
    statement = answers.get_statement(statement_id)
    if not gateway.enabled():
        abort(404)
    back = current_app.config["BASE_URL"].rstrip("/") + url_for(
        "billing.statement_detail", tenant_slug=tenant_slug, statement_id=statement.id)
    try:
        url = stripe_billing.payment_method_url(g.tenant, return_url=back)
    except gateway.StripeGatewayError:
        db.session.rollback()
        current_app.logger.exception("Stripe payment-method page for %s failed", g.tenant.id)
        flash(_("Stripe could not open its payment page just now. Try again in a few minutes."), "error")
        return redirect(url_for("billing.statement_detail", tenant_slug=tenant_slug, statement_id=statement.id))
    return redirect(url, 303)
