"""Demo data for ``make run``: a provider team and two client companies (idempotent)."""

from __future__ import annotations

import io
from datetime import timedelta

import click
from PIL import Image, ImageDraw
from sqlalchemy import select

from portal.auth.passwords import hash_password
from portal.auth.services import user_by_email
from portal.documents.models import Document
from portal.extensions import db
from tenants.context import Scope, bound
from tenants.lifecycle import assign, create_tenant, tenant_by_slug
from tenants.models import Membership, Tenant, User, utcnow
from tenants.policy import Role

DEMO_PASSWORD = "demo-Portal-2026"  # noqa: S105 - printed for the local demo only

PROVIDER = [
    ("admin@saigonbo.example", "Nguyễn Thị Lan", "provider_admin"),
    ("manager@saigonbo.example", "Trần Minh Quân", "manager"),
    ("staff1@saigonbo.example", "Lê Thu Hà", "staff"),
    ("staff2@saigonbo.example", "Phạm Đức Anh", "staff"),
]

TENANTS = [
    {
        "slug": "hoa-sen-trading", "name": "Công ty TNHH Thương mại Hoa Sen",
        "currency": "VND", "timezone": "Asia/Ho_Chi_Minh", "locale": "vi",
        "staff": ["manager@saigonbo.example", "staff1@saigonbo.example"],
        "users": [
            ("giamdoc@hoasen.example", "Võ Thanh Tùng", "client_admin"),
            ("ketoan@hoasen.example", "Đặng Thị Mai", "client_approver"),
            ("nhanvien@hoasen.example", "Bùi Văn Long", "client_member"),
        ],
    },
    {
        "slug": "northwind-vn", "name": "Northwind Trading Vietnam Co., Ltd.",
        "currency": "USD", "timezone": "Asia/Ho_Chi_Minh", "locale": "en",
        "staff": ["manager@saigonbo.example", "staff2@saigonbo.example"],
        "users": [
            ("cfo@northwind.example", "Sarah Whitfield", "client_admin"),
            ("controller@northwind.example", "Daniel Cho", "client_approver"),
            ("office@northwind.example", "Ngô Bảo Châu", "client_member"),
        ],
    },
]


def _user(email: str, name: str, provider_role: str | None, password_hash: str) -> User:
    user = user_by_email(email)
    if user is None:
        user = User(email=email, name=name, provider_role=provider_role, password_hash=password_hash,
                    locale="vi" if email.endswith("hoasen.example") else "en")
        db.session.add(user)
        db.session.flush()
    return user


def load() -> list[tuple[str, str, str]]:
    """Create what is missing; returns (role, where, e-mail) for every demo login."""
    pw = hash_password(DEMO_PASSWORD)
    logins = []
    staff = {}
    for email, name, role in PROVIDER:
        staff[email] = _user(email, name, role, pw)
        logins.append((role, "provider", email))
    db.session.commit()
    admin = staff[PROVIDER[0][0]]
    for spec in TENANTS:
        tenant = tenant_by_slug(spec["slug"]) or create_tenant(
            admin, name=spec["name"], slug=spec["slug"], currency=spec["currency"],
            timezone=spec["timezone"], locale=spec["locale"])
        for email in spec["staff"]:
            assign(admin, tenant, staff[email])
        with bound(Scope(user_id=admin.id, tenant_ids=frozenset({tenant.id}))):
            for email, name, role in spec["users"]:
                user = _user(email, name, None, pw)
                if not db.session.scalars(select(Membership).where(Membership.user_id == user.id)).first():
                    db.session.add(Membership(tenant_id=tenant.id, user_id=user.id, role=role,
                                              invited_by_id=admin.id))
                logins.append((role, tenant.slug, email))
            db.session.commit()
        _documents(tenant, staff[spec["staff"][-1]], user_by_email(spec["users"][-1][0]))
        _work(tenant, staff[spec["staff"][0]], staff[spec["staff"][-1]])
        _billing(tenant)
    return logins


def _billing(tenant: Tenant) -> None:
    """A plan in the tenant's currency since last year and last month's statement, so the Statements pages
    show one (its PDF is rendered by the worker). Idempotent: the plan exists once, the statement is issued once."""
    from datetime import date
    from decimal import Decimal

    from portal.billing.models import Plan, PlanPrice, TenantPlan
    from portal.billing.statements import last_month, run_for_tenant

    key = f"demo-{tenant.currency.lower()}"
    plan = db.session.scalar(select(Plan).where(Plan.key == key))
    if plan is None:
        vnd = tenant.currency == "VND"
        plan = Plan(key=key, name="Standard", currency=tenant.currency, payment_days=15,
                    monthly_fee=3_000_000 if vnd else 19_900)
        plan.prices = [PlanPrice(meter="documents_received", included=Decimal(20), unit_price=5_000 if vnd else 50),
                       PlanPrice(meter="hours:bookkeeping", included=Decimal(2), unit_price=400_000 if vnd else 2_500)]
        db.session.add(plan)
        db.session.commit()
    with bound(Scope(tenant_ids=frozenset({tenant.id}))):
        if not db.session.scalar(select(TenantPlan.id).limit(1)):
            db.session.add(TenantPlan(tenant_id=tenant.id, plan_id=plan.id, starts_on=date(2025, 1, 1)))
            db.session.commit()
    run_for_tenant(tenant.id, last_month(tenant))


def _picture(lines: list[str], size: tuple[int, int] = (620, 820)) -> Image.Image:
    page = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(page)
    for i, line in enumerate(lines):
        draw.text((40, 40 + 28 * i), line, fill=(20, 30, 50))
    return page


def _documents(tenant: Tenant, staff: User, member: User) -> None:
    """A few documents and an open request, so the vault is not empty in the demo (once per tenant)."""
    from portal.documents import requests, services

    with bound(Scope(user_id=member.id, tenant_ids=frozenset({tenant.id}), role=Role.CLIENT_MEMBER)):
        if db.session.scalar(select(Document.id).limit(1)):
            return
        invoice, receipt = io.BytesIO(), io.BytesIO()
        _picture([tenant.name, "", "INVOICE 2026-0042", "Office supplies", "Total: 12,500,000"]).save(invoice, "PDF")
        _picture(["Receipt", "Taxi airport - office", "Total: 350,000"], (360, 520)).save(receipt, "JPEG")
        statement = "date,description,amount\n2026-03-01,Opening balance,150000000\n2026-03-04,Rent,-42000000\n"
        for body, name, category in ((invoice.getvalue(), "Invoice 2026-0042.pdf", "invoice"),
                                     (receipt.getvalue(), "Taxi receipt.jpg", "receipt"),
                                     (statement.encode(), "Bank statement March.csv", "bank_statement")):
            target = services.upload_target(member, category=category, period="2026-03")
            services.upload(member, tenant, [body], filename=name, target=target)
    with bound(Scope(user_id=staff.id, tenant_ids=frozenset({tenant.id}), role=Role.STAFF)):
        soon = (utcnow() + timedelta(days=5)).date().isoformat()
        requests.create_request(staff, tenant, title="Documents for the March close", note=None, items=[
            requests.ItemInput("March bank statement, Vietcombank", "bank_statement", soon),
            requests.ItemInput("Signed labour contracts of new hires", "contract", None)])


def _work(tenant: Tenant, manager: User, staff: User) -> None:
    """Tasks in the queues and on a desk, and two recurring templates, so the work pages are not empty."""
    from portal.work import recurring, services
    from portal.work.models import TaskTemplate

    with bound(Scope(user_id=manager.id, tenant_ids=frozenset({tenant.id}), role=Role.MANAGER)):
        if db.session.scalar(select(TaskTemplate.id).limit(1)):
            return
        today = utcnow().date()
        for title, line, priority, days, assignee in (
                ("Register two new employees for social insurance", "admin", 2, 3, staff),
                ("Payroll for this month", "payroll", 2, 12, None),
                ("Quarterly VAT return", "bookkeeping", 1, 6, None),
                ("Key in the supplier invoices of last week", "data_entry", 3, 2, None)):
            services.create_task(manager, tenant, title=title, service_line_key=line, priority=priority,
                                 due=today + timedelta(days=days), assignee_id=str(assignee.id) if assignee else None,
                                 reviewer_id=str(manager.id) if assignee else None)
        recurring.add_template(manager, tenant, title="Monthly close", service_line_key="bookkeeping",
                               rule={"kind": "working_day", "n": 5})
        recurring.add_template(manager, tenant, title="Payroll", service_line_key="payroll",
                               rule={"kind": "day_of_month", "day": 25, "roll": "backward"})
        db.session.commit()


def print_logins(logins: list[tuple[str, str, str]]) -> None:
    """Print every demo login, and how the second factor works."""
    click.echo(f"\nDemo logins (password for all: {DEMO_PASSWORD})")
    for role, where, email in logins:
        click.echo(f"  {role:16} {where:18} {email}")
    click.echo("\nProvider roles and client admins must use a second factor: at their first sign-in the\n"
               "portal shows a QR code (and the secret as text) for any authenticator app\n"
               "(Google Authenticator, Aegis, 1Password, `oathtool --totp -b SECRET`).")
