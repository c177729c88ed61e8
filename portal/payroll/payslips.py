"""Payslips as people read them: one body (``payroll/payslip_body.html``) for the page and the PDF.

The PDF is in Vietnamese, English, or both side by side on one page (the tenant's setting; "by employee": English
for foreign employees, Vietnamese for the others), with the amount paid also in words (``billing.render``'s
``amount_in_words``, both languages). It is rendered by a job after each calculation that changed the run's figures
and stored encrypted in the tenant's vault as a document of the "payslip" category (a new version of the same
document when the run is calculated again), never routed to a task by intake.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from flask import render_template
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import or_, select
from werkzeug.exceptions import NotFound

from portal.billing import render
from portal.extensions import db
from portal.payroll.run_models import PayrollSettings, PayRun, Payslip
from tenants.models import Tenant

STATIC = Path(__file__).resolve().parent.parent / "static"
FUNDS = {"BHXH": _l("Social insurance (BHXH)"), "BHTNLD-BNN": _l("Occupational accident fund (BHTNLĐ-BNN)"),
         "BHYT": _l("Health insurance (BHYT)"), "BHTN": _l("Unemployment insurance (BHTN)")}
OVERTIME = {"weekday": _l("Overtime, weekdays"), "weekend": _l("Overtime, weekly days off"),
            "holiday": _l("Overtime, public holidays"), "night": _l("Night work supplement"),
            "weekday_night": _l("Overtime at night, weekdays"), "weekend_night": _l("Overtime at night, days off"),
            "holiday_night": _l("Overtime at night, public holidays")}


def fund_name(code: str) -> str:
    return str(FUNDS.get(code, code))


def overtime_name(kind: str) -> str:
    return str(OVERTIME.get(kind, kind))


def languages(settings: PayrollSettings, content: dict[str, Any]) -> list[str]:
    """The languages of one employee's payslip PDF, in order."""
    choice = settings.payslip_language
    if choice == "employee":
        return ["en"] if content["employee"].get("foreigner") else ["vi"]
    return ["vi", "en"] if choice == "both" else [choice]


def context(run: PayRun, content: dict[str, Any], tenant: Tenant, locale: str) -> dict[str, Any]:
    """What ``payroll/payslip_body.html`` needs, amounts formatted for ``locale`` (VND: integer đồng)."""
    currency = "VND"

    def money(amount: int | None) -> str:
        return "" if amount is None else render.format_money(int(amount), currency, locale)

    totals = content["totals"]
    return {"run": run, "slip": content, "lines": content["lines"], "totals": totals, "tenant": tenant,
            "money": money, "fund_name": fund_name, "overtime_name": overtime_name,
            "in_words": render.amount_in_words(int(totals.get("take_home", 0)), currency, locale),
            "locale": locale}


def pdf_bytes(run: PayRun, content: dict[str, Any], tenant: Tenant, settings: PayrollSettings) -> bytes:
    """One employee's payslip PDF (needs an application context; no request)."""
    bodies = []
    for language in languages(settings, content):
        with force_locale(language):
            # Markup: a template's own output, its values escaped when it was rendered.
            bodies.append((language, Markup(render_template("payroll/payslip_body.html",  # noqa: S704
                                                            **context(run, content, tenant, language)))))
    html = render_template("payroll/payslip_pdf.html", bodies=bodies, run=run, tenant=tenant,
                           lang=bodies[0][0])
    return render.html_to_pdf(html, static_dir=STATIC)


def render_pdfs(run_id: str, version: str, batch: int = 100) -> int:
    """The job after a calculation: render and store the PDFs of the run's payslips not rendered for ``version``,
    ``batch`` at a time (the next batch is another job). Stops when the run was calculated again since (that
    calculation's job renders them). Idempotent; returns how many were stored."""
    from portal.documents import services as vault
    from portal.payroll import runs
    from workers import enqueue

    version_no = int(version)
    run = db.session.get(PayRun, uuid.UUID(str(run_id)))
    if run is None or run.version != version_no:
        return 0
    tenant = db.session.get(Tenant, run.tenant_id)
    settings = runs.settings_of(tenant)
    pending = list(db.session.scalars(
        select(Payslip.id).where(Payslip.run_id == run.id,
                                 or_(Payslip.pdf_version.is_(None), Payslip.pdf_version != version_no))
        .order_by(Payslip.employee_code).limit(batch)))
    stored = 0
    for slip_id in pending:
        run = db.session.get(PayRun, uuid.UUID(str(run_id)), populate_existing=True)
        slip = db.session.get(Payslip, slip_id, populate_existing=True)
        if run is None or run.version != version_no or slip is None:
            return stored
        pdf = pdf_bytes(run, slip.content, tenant, settings)
        try:
            target = vault.upload_target(None, category="payslip", period=run.key, tags=["payslip"],
                                         document_id=str(slip.document_id) if slip.document_id else None)
        except NotFound:  # its document was removed: a new one
            target = vault.upload_target(None, category="payslip", period=run.key, tags=["payslip"])
        result = vault.upload(None, tenant, [pdf], filename=f"payslip-{run.key}-{slip.employee_code}.pdf",
                              target=target)  # commits
        if not result.ok or result.document is None:
            raise RuntimeError(f"a payslip PDF was not stored: {result.message}")
        slip = db.session.get(Payslip, slip_id, populate_existing=True)
        if slip is None:
            return stored
        slip.document_id, slip.pdf_version = result.document.id, version_no
        db.session.commit()
        stored += 1
    if len(pending) == batch:
        enqueue("payroll.payslip_pdfs", run_id, version_no, tenant_id=tenant.id)
        db.session.commit()
    return stored
