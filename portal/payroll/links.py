"""Payslips e-mailed to employees as a link, when the client switches it on (``PayrollSettings.email_payslips``).

When a run is marked paid (its figures never change again), every payslip whose employee has an e-mail address and
a national id number gets a link (``link_models.PayslipLink``: the SHA-256 of a random token, 30 days) and an
e-mail through the outbox (``portal.mail.send``) in the payslips' language: whose payslip, which month, from which
company, the link and until when it works; never an amount. A small run is mailed in the transaction that marks it
paid; a large one by a job, ``BATCH`` payslips at a time (``send_batch``). Either way each payslip is mailed once
(a unique index on the "paid" link: a second marking, a job run twice, change nothing).

The public page ``/payslip/<token>`` (no sign-in) asks for the employee's national id number as a second factor, so
that a forwarded or intercepted e-mail alone opens nothing. The token finds its link's tenant through row-level
security (``tenants.rls.PRESENTED_PAYSLIP_LINK``: the one row whose token was presented, read only), then that
tenant is bound (``tenants.context.bound``) as a request binds it, and everything else is read through the usual
tenant scope. The right number streams the PDF from the vault and writes ``payroll.payslip_opened`` to the client's
access log (never the number); a wrong one is counted, and the fifth locks the link. An unknown, expired, replaced
or locked token all answer alike (``GONE``): nobody can tell which tokens exist. The provider's people may send an
employee a new link (``resend``), which revokes the old one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from babel.dates import format_date
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from werkzeug.exceptions import NotFound

from portal.extensions import db
from portal.payroll import payslips, runs
from portal.payroll.link_models import PayslipLink
from portal.payroll.models import Employee
from portal.payroll.run_models import PayrollSettings, PayRun, Payslip
from tenants import audit
from tenants.context import Scope, bound
from tenants.models import Tenant, User, utcnow
from tenants.zones import tenant_zone

TTL = timedelta(days=30)
MAX_ATTEMPTS = 5  # wrong national id numbers before a link locks
INLINE = 25  # a run of at most this many payslips is mailed as it is marked paid; a larger one by jobs
BATCH = 100  # payslips mailed by one job
RESEND_INTERVAL = timedelta(minutes=1)  # two sends closer than this are one double click
TOKEN_MAX = 100  # a longer "token" is not one of ours (token_urlsafe(32) is 43 characters)

_PRESENT = text("select set_config('app.payslip_link', :hex, true)")

# Why a payslip is not e-mailed, in words.
REASONS = {"no_employee": _l("the employee's record was removed"),
           "no_email": _l("no e-mail address"),
           "no_national_id": _l("no national id number to confirm with")}
STATES = {"sent": _l("e-mailed, not opened yet"), "opened": _l("opened"), "locked": _l("locked after 5 wrong numbers"),
          "expired": _l("the link expired"), "waiting": _l("being e-mailed"), "not_sent": _l("not e-mailed")}


def token_hash(raw: str) -> bytes:
    return hashlib.sha256(raw.encode()).digest()


def link_url(raw: str) -> str:
    """The link as e-mailed (mails are written by jobs too, with no request: the configured base address)."""
    return f"{current_app.config['BASE_URL'].rstrip('/')}/payslip/{raw}"


def _normal(national_id: str | None) -> str:
    """A national id number as compared: letters and digits only, upper case (``12 345-678 9012`` is the same)."""
    return re.sub(r"[^0-9A-Za-z]", "", national_id or "").upper()


def _same_id(typed: str, stored: str) -> bool:
    """Whether ``typed`` is ``stored``, in constant time (equal-length digests: not even the length leaks)."""
    return hmac.compare_digest(hashlib.sha256(_normal(typed).encode()).digest(),
                               hashlib.sha256(_normal(stored).encode()).digest())


def reason_words(key: str | None) -> str:
    return str(REASONS[key]) if key else ""


# --- sending ------------------------------------------------------------------------------------------------------

def _recipient(slip: Payslip, employee: Employee | None) -> str | None:
    """Why ``slip`` cannot be e-mailed (a ``REASONS`` key), or None when it can."""
    if employee is None:
        return "no_employee"
    if not (employee.email or "").strip():
        return "no_email"
    if not _normal(employee.national_id):
        return "no_national_id"
    return None


def _employees(slips: list[Payslip]) -> dict[uuid.UUID, Employee]:
    ids = [s.employee_id for s in slips if s.employee_id is not None]
    return {e.id: e for e in db.session.scalars(select(Employee).where(Employee.id.in_(ids)))} if ids else {}


def _issue(slip: Payslip, reason: str, actor: User | None, now: datetime) -> tuple[str, datetime] | None:
    """A new link to ``slip``: (token, expiry), or None when the unique indexes say it has one already (it was
    mailed when paid, or it has a live link). Only the token's SHA-256 is stored."""
    raw = secrets.token_urlsafe(32)
    expires = now + TTL
    inserted = db.session.execute(
        insert(PayslipLink).values(id=uuid.uuid4(), tenant_id=slip.tenant_id, payslip_id=slip.id,
                                   token_hash=token_hash(raw), reason=reason, expires_at=expires, failed_attempts=0,
                                   created_by_id=actor.id if actor is not None else None, created_at=now)
        .on_conflict_do_nothing().returning(PayslipLink.id)).scalar()
    return (raw, expires) if inserted is not None else None


def _when(moment: datetime, zone: Any, language: str) -> str:
    local = moment.astimezone(zone)
    return f"{format_date(local.date(), format='long', locale=language)} {local:%H:%M}"


def mail_text(tenant: Tenant, run: PayRun, name: str, raw: str, expires: datetime,
              languages: list[str]) -> tuple[str, str]:
    """The (subject, body) of a payslip's e-mail, in each of ``languages`` in turn: whose payslip of which month is
    ready, from which company, the link and until when it works. No amount: the figures are behind the link."""
    zone = tenant_zone(tenant.id)
    subjects, bodies = [], []
    for language in languages:
        with force_locale(language):
            subjects.append(_("Your payslip for %(month)s from %(company)s", month=run.label, company=tenant.name))
            bodies.append("\n\n".join([
                _("Hello %(name)s,", name=name),
                _("Your payslip for %(month)s from %(company)s is ready.", month=run.label, company=tenant.name),
                _("Open it with this link. To be sure it is you, the page asks for your national id number "
                  "(CCCD):") + f"\n{link_url(raw)}",
                _("The link works until %(when)s. After %(num)d wrong numbers it locks: then ask %(company)s for a "
                  "new one.", when=_when(expires, zone, language), num=MAX_ATTEMPTS, company=tenant.name),
                _("This e-mail holds no figures: they are behind the link, for you alone. Do not forward it."),
            ]))
    return " / ".join(subjects), "\n\n— — —\n\n".join(bodies) + "\n"


def _mail(tenant: Tenant, run: PayRun, slip: Payslip, employee: Employee, settings: PayrollSettings, raw: str,
          expires: datetime) -> None:
    from portal.mail import send

    subject, body = mail_text(tenant, run, employee.full_name, raw, expires,
                              payslips.languages(settings, slip.content))
    send(employee.email.strip(), subject, body)


def run_paid(actor: User | None, tenant: Tenant, run: PayRun) -> None:
    """``runs.mark_paid``'s step, in its transaction: when the tenant e-mails payslips, mail a small run's links
    now, or queue the job that mails a large one's. The caller commits."""
    from workers import enqueue

    if not runs.settings_of(tenant).email_payslips:
        return
    if run.headcount <= INLINE:
        send_batch(str(run.id), "", actor=actor, limit=None)
    else:
        enqueue("payroll.payslip_links", run.id, "", tenant_id=tenant.id)


def send_batch(run_id: str, after: str = "", *, actor: User | None = None, limit: int | None = BATCH) -> int:
    """E-mail the links of the paid run's payslips after employee code ``after`` (``limit`` of them; None: all),
    each payslip once; queue the next batch. The bound tenant's run only; nothing when the setting is off or the
    run is not paid. Returns how many were mailed. The caller commits (the job runner, or ``mark_paid``)."""
    from workers import enqueue

    run = db.session.scalar(select(PayRun).where(PayRun.id == uuid.UUID(str(run_id))))
    if run is None or run.state != "paid":
        return 0
    tenant = db.session.get(Tenant, run.tenant_id)
    settings = runs.settings_of(tenant)
    if not settings.email_payslips:
        return 0
    query = select(Payslip).where(Payslip.run_id == run.id, Payslip.employee_code > after) \
        .order_by(Payslip.employee_code)
    slips = list(db.session.scalars(query.limit(limit) if limit else query))
    employees = _employees(slips)
    now, sent = utcnow(), 0
    for slip in slips:
        employee = employees.get(slip.employee_id) if slip.employee_id else None
        if _recipient(slip, employee) is not None:
            continue
        issued = _issue(slip, "paid", actor, now)
        if issued is None:
            continue  # mailed already (a job run twice, a second marking)
        _mail(tenant, run, slip, employee, settings, *issued)
        sent += 1
    if sent:
        audit.record("payroll.payslips_emailed", audit.Actor.of(actor), tenant_id=tenant.id,
                     object_type="payroll_run", object_id=run.id,
                     data={"name": _("Payroll %(month)s", month=run.label), "month": run.key, "count": sent})
    if limit and len(slips) == limit:
        enqueue("payroll.payslip_links", run.id, slips[-1].employee_code, tenant_id=tenant.id)
    return sent


def resend(actor: User, tenant: Tenant, month: date, payslip_id: str, ip: str | None = None) -> PayslipLink:
    """E-mail one employee a new link to their payslip of the paid run of ``month`` (after correcting their
    e-mail address, say): the old link stops working. The provider's people (``tenant:payroll.keep``); audited;
    commits. Another tenant's payslip, or one of another run, is a 404."""
    run = runs.get_run(month, lock=True)
    if run is None:
        raise NotFound()
    slip = runs.payslip_of(run, payslip_id)
    if run.state != "paid":
        raise runs.RunConflict(_("Payslips are e-mailed once the run is marked paid."))
    settings = runs.settings_of(tenant)
    if not settings.email_payslips:
        raise runs.RunConflict(_("E-mailing payslips is switched off in the payroll settings: the client's admin "
                                 "switches it on."))
    employee = _employees([slip]).get(slip.employee_id) if slip.employee_id else None
    why = _recipient(slip, employee)
    if why is not None:
        raise runs.RunError(_("The payslip of %(code)s cannot be e-mailed: %(why)s.", code=slip.employee_code,
                              why=reason_words(why)))
    now = utcnow()
    live = db.session.scalar(select(PayslipLink).where(PayslipLink.payslip_id == slip.id,
                                                       PayslipLink.revoked_at.is_(None))
                             .with_for_update().execution_options(populate_existing=True))
    if live is not None and live.created_at > now - RESEND_INTERVAL:
        raise runs.RunConflict(_("A link to the payslip of %(code)s was e-mailed less than a minute ago: nothing "
                                 "was sent again.", code=slip.employee_code))
    if live is not None:
        live.revoked_at = now
        db.session.flush()  # the old link is no longer live before the new one is
    issued = _issue(slip, "resent", actor, now)
    if issued is None:
        raise runs.RunConflict(_("Another link to this payslip was e-mailed at the same moment: nothing was sent "
                                 "again."))
    _mail(tenant, run, slip, employee, settings, *issued)
    audit.record("payroll.payslip_link_resent", audit.Actor.of(actor), tenant_id=tenant.id,
                 object_type="payroll_payslip", object_id=slip.id, ip=ip,
                 data={"name": _("Payslip %(month)s, %(code)s", month=run.label, code=slip.employee_code),
                       "month": run.key, "code": slip.employee_code, "replaced": live is not None})
    db.session.commit()
    return db.session.scalar(select(PayslipLink).where(PayslipLink.token_hash == token_hash(issued[0])))


# --- the run's page ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MailRow:
    """One payslip of a paid run as its e-mail stands: its latest link's state, or why it is not e-mailed."""

    payslip_id: uuid.UUID
    code: str
    name: str
    state: str  # a STATES key
    reason: str | None  # a REASONS key: why it cannot be e-mailed now
    link: PayslipLink | None

    @property
    def state_words(self) -> str:
        return str(STATES[self.state])

    @property
    def reason_words(self) -> str:
        return reason_words(self.reason)


@dataclass(frozen=True)
class Mailing:
    on: bool  # the tenant e-mails payslips
    rows: list[MailRow]

    @property
    def sent(self) -> int:
        return sum(1 for r in self.rows if r.link is not None)

    @property
    def not_sent(self) -> list[MailRow]:
        return [r for r in self.rows if r.link is None and r.reason is not None]


def overview(run: PayRun, settings: PayrollSettings) -> Mailing | None:
    """How the paid run's payslips went to the employees (None before it is paid): per payslip its latest link, or
    why it was not e-mailed. The bound tenant's run."""
    if run.state != "paid":
        return None
    slips = list(run.payslips)
    employees = _employees(slips)
    latest: dict[uuid.UUID, PayslipLink] = {}
    for link in db.session.scalars(select(PayslipLink).join(Payslip, Payslip.id == PayslipLink.payslip_id)
                                   .where(Payslip.run_id == run.id).order_by(PayslipLink.created_at)):
        latest[link.payslip_id] = link
    now, rows = utcnow(), []
    # A large run's links go out by jobs in the minutes after it was marked paid: until then, "being e-mailed".
    by_jobs = run.headcount > INLINE and run.paid_at is not None and now - run.paid_at < timedelta(hours=1)
    for slip in slips:
        employee = employees.get(slip.employee_id) if slip.employee_id else None
        reason = _recipient(slip, employee)
        link = latest.get(slip.id)
        if link is None:
            state = "waiting" if settings.email_payslips and reason is None and by_jobs else "not_sent"
        elif link.locked_at is not None:
            state = "locked"
        elif link.expires_at <= now:
            state = "expired"
        else:
            state = "opened" if link.opened_at is not None else "sent"
        rows.append(MailRow(slip.id, slip.employee_code, slip.content["employee"]["name"], state, reason, link))
    return Mailing(settings.email_payslips, rows)


# --- the public page --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """What the public page answers: ``kind`` gone (the neutral answer), form, wrong, locked, preparing or opened."""

    kind: str
    company: str = ""
    month: str = ""
    expires_at: datetime | None = None
    left: int = 0
    download: Any = None  # portal.documents.services.Download, when opened


GONE = Outcome("gone")


def _tenant_of(raw: str) -> uuid.UUID | None:
    """The tenant of the link whose token was presented, read with no tenant bound: row-level security admits that
    one row while ``app.payslip_link`` names its hash, which is cleared again at once."""
    if not raw or len(raw) > TOKEN_MAX:
        return None
    digest = token_hash(raw)
    db.session.execute(_PRESENT, {"hex": digest.hex()})
    tenant_id = db.session.scalar(select(PayslipLink.tenant_id).where(PayslipLink.token_hash == digest)
                                  .execution_options(rls_only=True))
    db.session.execute(_PRESENT, {"hex": ""})  # the widening served its purpose: close it again
    return tenant_id


@contextmanager
def _presented(raw: str) -> Iterator[uuid.UUID | None]:
    """Bind the tenant of the presented link for the block (as a request binds the tenant of its address); None
    when no link has this token."""
    tenant_id = _tenant_of(raw)
    if tenant_id is None:
        yield None
        return
    with bound(Scope(tenant_ids=frozenset({tenant_id}))):
        yield tenant_id


@dataclass(frozen=True)
class _Found:
    link: PayslipLink
    tenant: Tenant
    run: PayRun
    slip: Payslip
    employee: Employee


def _find(raw: str, tenant_id: uuid.UUID, *, lock: bool = False) -> _Found | None:
    """The usable link behind ``raw`` in the bound tenant and what it opens, or None: revoked, locked, expired, a
    gone tenant, a payslip not in this tenant or not of a paid run, an employee with no national id number."""
    query = select(PayslipLink).where(PayslipLink.token_hash == token_hash(raw))
    if lock:
        query = query.with_for_update(of=PayslipLink).execution_options(populate_existing=True)
    link = db.session.scalar(query)
    if link is None or link.revoked_at is not None or link.locked_at is not None or link.expires_at <= utcnow():
        return None
    tenant = db.session.get(Tenant, tenant_id)
    slip = db.session.scalar(select(Payslip).where(Payslip.id == link.payslip_id))
    if tenant is None or tenant.is_gone or slip is None or slip.employee_id is None:
        return None
    run = db.session.scalar(select(PayRun).where(PayRun.id == slip.run_id))
    employee = db.session.scalar(select(Employee).where(Employee.id == slip.employee_id))
    if run is None or run.state != "paid" or employee is None or not _normal(employee.national_id):
        return None
    return _Found(link, tenant, run, slip, employee)


def peek(raw: str) -> Outcome:
    """What the page shows before a number is typed: the form (which company's payslip of which month), or
    ``GONE``. Changes nothing."""
    with _presented(raw) as tenant_id:
        found = _find(raw, tenant_id) if tenant_id is not None else None
        outcome = GONE if found is None else Outcome("form", found.tenant.name, found.run.label,
                                                     found.link.expires_at)
        db.session.rollback()
        return outcome


def open_link(raw: str, typed: str, ip: str | None = None) -> Outcome:
    """Check the national id number typed on the link's page. Right: the payslip's PDF (``opened``: its first
    opening and each one after are in the client's access log), or ``preparing`` while the PDF is not rendered.
    Wrong: counted (``wrong``, with the tries left); the ``MAX_ATTEMPTS``-th locks the link (``locked``, in the
    access log). An unusable link: ``GONE``, whatever was typed. The number is never stored nor logged. Commits."""
    from portal.documents import services as vault

    with _presented(raw) as tenant_id:
        found = _find(raw, tenant_id, lock=True) if tenant_id is not None else None
        if found is None:
            db.session.rollback()
            return GONE
        link, tenant, run, slip = found.link, found.tenant, found.run, found.slip
        company, month, code = tenant.name, run.label, slip.employee_code
        name = _("Payslip %(month)s, %(code)s", month=month, code=code)
        if not _same_id(typed, found.employee.national_id or ""):
            link.failed_attempts += 1
            if link.failed_attempts >= MAX_ATTEMPTS:
                link.locked_at = utcnow()
                audit.record("payroll.payslip_link_locked", audit.SYSTEM, tenant_id=tenant.id,
                             object_type="payroll_payslip", object_id=slip.id, ip=ip,
                             data={"name": name, "month": run.key, "code": code, "attempts": link.failed_attempts})
                db.session.commit()
                return Outcome("locked", company, month)
            left = MAX_ATTEMPTS - link.failed_attempts
            expires = link.expires_at
            db.session.commit()
            return Outcome("wrong", company, month, expires, left=left)
        if slip.document_id is None or slip.pdf_version != run.version:
            expires = link.expires_at
            db.session.rollback()
            return Outcome("preparing", company, month, expires)
        link_id, document_id = link.id, str(slip.document_id)
        employee = audit.Actor(None, f"{found.employee.full_name} ({code})", "client")
        try:
            download = vault.download(None, tenant, document_id, ip=ip)  # authenticated whole; commits its own line
        except NotFound:  # its document was removed from the vault: nothing to open
            db.session.rollback()
            return GONE
        link = db.session.scalar(select(PayslipLink).where(PayslipLink.id == link_id).with_for_update()
                                 .execution_options(populate_existing=True))
        first = link.opened_at is None
        if first:
            link.opened_at = utcnow()
        audit.record("payroll.payslip_opened", employee, tenant_id=tenant.id, object_type="payroll_payslip",
                     object_id=slip.id, ip=ip, data={"name": name, "month": run.key, "code": code, "first": first})
        expires = link.expires_at
        db.session.commit()
        return Outcome("opened", company, month, expires, download=download)
