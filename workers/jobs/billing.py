"""Billing jobs: a tenant's statement of the month that ended on its clock."""

from __future__ import annotations

import uuid

from workers.jobs import job


@job("billing.statement")
def statement(tenant_id: str) -> None:
    """Issue last month's statement if it is not issued yet (daily: a failed day is tried again the next)."""
    from portal.billing.statements import run_for_tenant

    run_for_tenant(uuid.UUID(tenant_id))


@job("billing.statement_pdf")
def statement_pdf(statement_id: str) -> None:
    """Render an issued statement to PDF and keep it in the vault (once)."""
    from portal.billing.documents import store_pdf

    store_pdf(statement_id)


@job("billing.stripe_invoice")
def stripe_invoice(statement_id: str) -> None:
    """The statement's Stripe invoice, once per version (Stripe on only; a retry or a second run finds it)."""
    from portal.billing.stripe_billing import invoice_statement

    invoice_statement(statement_id)


@job("billing.dunning")
def dunning(tenant_id: str) -> None:
    """Reminders for overdue statements at the set days; uploads suspended only where the provider said so."""
    from portal.billing.dunning import run

    run(tenant_id)
