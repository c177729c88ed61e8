"""What the load test's users find when they sign in: tenants with their people, documents, requests,
queues of tasks, statements and books, made through the portal's own services (as ``portal demo`` does).

One account per simulated user and phase: a provider account signs in with a second factor, and a code
is accepted once per account and time step, so two locust users (or two phases within 30 s) never
share one. Everyone has the same password, hashed once.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

PASSWORD = "load-Portal-2026"  # noqa: S105 - a throw-away database of the load test
LINES = ("bookkeeping", "payroll", "admin", "data_entry")
# Shares of the simulated users (tests/load/locustfile.py's weights).
SHARES = {"member": 0.4, "approver": 0.3, "staff": 0.2, "manager": 0.1}
SALE = [("131", 11_000_000, 0), ("5111", 0, 10_000_000), ("33311", 0, 1_000_000)]
PAID = [("1121", 11_000_000, 0), ("131", 0, 11_000_000)]


@dataclass(frozen=True)
class Sizes:
    tenants: int = 6
    tasks_per_tenant: int = 300
    requests_per_tenant: int = 8  # 30 items each
    entries_per_tenant: int = 60
    documents_per_tenant: int = 3


def accounts_needed(users: int) -> dict[str, int]:
    """Accounts per role for ``users`` simulated users (locust rounds the shares; a few spare)."""
    return {role: math.ceil(users * share) + 3 for role, share in SHARES.items()}


def text_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with a text layer (Helvetica, ASCII), so intake reads its text instead of OCR'ing it."""
    def escape(line: str) -> str:
        return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    text = " 0 -22 Td ".join(f"({escape(line)}) Tj" for line in lines)
    content = f"BT /F1 14 Tf 60 780 Td {text} ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def invoice(number: str, seller: str = "Cong ty TNHH Hoa Sen") -> bytes:
    """An invoice whose number makes it unique (the vault links identical files instead of storing them)."""
    return text_pdf(["HOA DON GIA TRI GIA TANG", f"So: {number}", f"Don vi ban hang: {seller}",
                     "Tong cong tien thanh toan: 1.944.000 dong"])


def seed(users: int, phases: dict[str, int], sizes: Sizes = Sizes()) -> dict:
    """Create everything in the bound app's database; returns the facts the load test needs (JSON-able).

    ``phases``: how many simulated users each phase runs (the main load, the faults' shorter load, the
    baseline's one user per role); each gets accounts of its own.
    """
    import pyotp
    from sqlalchemy import select

    from portal.auth.passwords import hash_password
    from portal.billing.statements import run_for_tenant
    from portal.documents import requests, services
    from portal.extensions import db
    from portal.ledger import services as ledger
    from portal.work import services as work
    from portal.work.kpi import Month
    from tenants.context import Scope, bound
    from tenants.fields import seal
    from tenants.lifecycle import assign, create_tenant
    from tenants.models import Membership, Tenant, User, utcnow
    from tenants.policy import Role
    from tests.factories import put_on_plan

    password_hash = hash_password(PASSWORD)
    run = uuid.uuid4().hex[:6]

    def person(role: Role, label: str, tenant: Tenant | None = None) -> dict:
        email = f"{label}-{uuid.uuid4().hex[:8]}@load.test"
        user = User(email=email, name=label, password_hash=password_hash,
                    provider_role=role.value if tenant is None else None, locale="en")
        secret = None
        if tenant is None:  # provider people sign in with a second factor
            secret = pyotp.random_base32()
            user.totp_secret_enc, user.mfa_enrolled_at = seal(secret), utcnow()
        db.session.add(user)
        db.session.flush()
        if tenant is not None:
            with bound(Scope(tenant_ids=frozenset({tenant.id}))):
                db.session.add(Membership(tenant_id=tenant.id, user_id=user.id, role=role.value))
                db.session.commit()
        db.session.commit()
        return {"email": email, "id": str(user.id), "totp": secret, "tenant": tenant.slug if tenant else None}

    admin_facts = person(Role.PROVIDER_ADMIN, "admin")
    admin = db.session.get(User, uuid.UUID(admin_facts["id"]))
    tenants: list[Tenant] = []
    for i in range(sizes.tenants):
        tenants.append(create_tenant(admin, name=f"Load Trading Co {i + 1}", slug=f"load-{run}-{i + 1}",
                                     currency="VND", locale="en"))
    needed = {phase: accounts_needed(count) for phase, count in phases.items()}
    accounts: dict[str, dict[str, list[dict]]] = {}
    for phase, roles in needed.items():
        accounts[phase] = {role: [] for role in roles}
        for k in range(roles["staff"]):
            accounts[phase]["staff"].append(person(Role.STAFF, f"{phase}-staff-{k}"))
        for k in range(roles["manager"]):
            accounts[phase]["manager"].append(person(Role.MANAGER, f"{phase}-manager-{k}"))
        for role, enum in (("member", Role.CLIENT_MEMBER), ("approver", Role.CLIENT_APPROVER)):
            for k in range(roles[role]):
                accounts[phase][role].append(person(enum, f"{phase}-{role}-{k}", tenants[k % len(tenants)]))
    provider = [db.session.get(User, uuid.UUID(a["id"]))
                for phase in accounts.values() for role in ("staff", "manager") for a in phase[role]]
    for tenant in tenants:
        for user in provider:
            assign(admin, tenant, user)

    manager = next(u for u in provider if u.provider_role == Role.MANAGER.value)
    facts_tenants = []
    today = date.today()
    for i, tenant in enumerate(tenants):
        tenant = db.session.get(Tenant, tenant.id)
        facts = {"slug": tenant.slug, "id": str(tenant.id), "requests": [], "documents": [], "statements": []}
        with bound(Scope(user_id=manager.id, tenant_ids=frozenset({tenant.id}), role=Role.MANAGER)):
            for k in range(sizes.tasks_per_tenant):
                work.create_task(manager, tenant, title=f"Load task {k + 1}", service_line_key=LINES[k % len(LINES)],
                                 priority=1 + k % 3, due=today + timedelta(days=1 + k % 20))
            for r in range(sizes.requests_per_tenant):
                made = requests.create_request(manager, tenant, title=f"Documents for the close {r + 1}", note=None,
                                               items=[requests.ItemInput(f"Invoice {r + 1}.{k + 1}", "invoice")
                                                      for k in range(requests.MAX_ITEMS)])
                facts["requests"].append({"id": str(made.id), "items": [str(item.id) for item in made.items]})
            ledger.start_books(manager, tenant, "vn_tt133")
            ledger.post_batch(manager, tenant, [
                ledger.EntryInput(date(today.year, 1, 1) + timedelta(days=k % 300),
                                  [ledger.LineInput(a, d, c) for a, d, c in (SALE if k % 2 == 0 else PAID)])
                for k in range(sizes.entries_per_tenant)])
            db.session.commit()
        member = db.session.get(User, uuid.UUID(accounts["main"]["member"][i % len(accounts["main"]["member"])]["id"]))
        with bound(Scope(user_id=member.id, tenant_ids=frozenset({tenant.id}), role=Role.CLIENT_MEMBER)):
            for k in range(sizes.documents_per_tenant):
                target = services.upload_target(member, category="invoice")
                result = services.upload(member, tenant, [invoice(f"SEED-{run}-{i}-{k}")], filename=f"seed {k}.pdf",
                                         target=target)
                assert result.ok, result.message
                facts["documents"].append(str(result.document.id))
        put_on_plan(tenant)
        month = Month.of(today).previous()
        for _ in range(3):
            run_for_tenant(tenant.id, month)
            month = month.previous()
        from portal.billing.models import Statement

        with bound(Scope(tenant_ids=frozenset({tenant.id}))):
            facts["statements"] = [str(s) for s in db.session.scalars(select(Statement.id))]
        facts_tenants.append(facts)
        db.session.commit()
    return {"password": PASSWORD, "tenants": facts_tenants, "accounts": accounts}
