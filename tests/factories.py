"""Small factories that provision tenants and people the way production does."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field

import pyotp
from flask.testing import FlaskClient

from portal.auth.passwords import hash_password
from portal.extensions import db
from tenants.context import Scope, bound
from tenants.fields import seal
from tenants.lifecycle import assign, create_tenant
from tenants.models import Membership, Tenant, User, utcnow
from tenants.policy import CLIENT_ROLES, PROVIDER_ROLES, Role

PASSWORD = "correct horse battery staple"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Person:
    """A test user and the secrets a real person would hold."""

    id: uuid.UUID
    email: str
    role: Role
    password: str = PASSWORD
    totp_secret: str | None = None
    tenant_slug: str | None = None
    used_steps: set[int] = field(default_factory=set)

    def next_code(self) -> str:
        """A TOTP code for a time step not used yet (each code is accepted once): this step's or the next's, which
        the server accepts for 30 to 90 s, never the last one's (valid only until this step ends: a sign-in on a
        loaded machine was refused with it at a step's end)."""
        totp = pyotp.TOTP(self.totp_secret)
        while True:
            now = int(time.time()) // totp.interval
            for step in (now, now + 1):
                if step not in self.used_steps and (not self.used_steps or step > max(self.used_steps)):
                    self.used_steps.add(step)
                    return totp.at(step * totp.interval)
            time.sleep(1)


def make_tenant(name: str | None = None, **kw) -> Tenant:
    slug = unique("co")
    return create_tenant(None, name=name or f"Company {slug}", slug=slug, **kw)


def make_person(role: Role, tenant: Tenant | None = None, *, mfa: bool | None = None) -> Person:
    """A user with ``role``; a member of ``tenant`` for client roles. MFA enrolled by default
    where the portal requires it."""
    email = f"{unique(role.value)}@example.test"
    secret = pyotp.random_base32()
    needs = mfa if mfa is not None else (role in PROVIDER_ROLES or role == Role.CLIENT_ADMIN)
    user = User(email=email, name=email.split("@")[0], password_hash=hash_password(PASSWORD),
                provider_role=role.value if role in PROVIDER_ROLES else None)
    if needs:
        user.totp_secret_enc = seal(secret)
        user.mfa_enrolled_at = utcnow()
    db.session.add(user)
    db.session.flush()
    if role in CLIENT_ROLES:
        with bound(Scope(tenant_ids=frozenset({tenant.id}))):
            db.session.add(Membership(tenant_id=tenant.id, user_id=user.id, role=role.value))
            db.session.commit()
    db.session.commit()
    return Person(user.id, email, role, totp_secret=secret if needs else None,
                  tenant_slug=tenant.slug if tenant else None)


@dataclass(frozen=True)
class TenantRef:
    """A tenant's public facts, usable outside an application context."""

    id: uuid.UUID
    slug: str
    name: str

    @classmethod
    def of(cls, tenant: Tenant) -> TenantRef:
        return cls(tenant.id, tenant.slug, tenant.name)


@dataclass
class World:
    """Tenant A and tenant B, a person for every client role in each, provider staff."""

    a: TenantRef
    b: TenantRef
    people: dict[str, Person]

    def __getitem__(self, key: str) -> Person:
        return self.people[key]


def make_world() -> World:
    a, b = make_tenant(unique("Alpha Co")), make_tenant(unique("Beta Co"))
    people: dict[str, Person] = {}
    for role in CLIENT_ROLES:
        people[f"a_{role.value}"] = make_person(role, a)
        people[f"b_{role.value}"] = make_person(role, b)
    for role in PROVIDER_ROLES:
        people[role.value] = make_person(role)
    people["unassigned_staff"] = make_person(Role.STAFF)
    admin = db.session.get(User, people["provider_admin"].id)
    for key in ("manager", "staff"):
        assign(admin, a, db.session.get(User, people[key].id))
    return World(TenantRef.of(a), TenantRef.of(b), people)


CSRF = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client: FlaskClient, url: str = "/auth/login") -> str:
    """The CSRF token of the client's session, read from a rendered form like a browser would."""
    html = client.get(url).data
    match = CSRF.search(html)
    assert match, f"no CSRF token on {url}"
    return match.group(1).decode()


def login(client: FlaskClient, person: Person) -> None:
    """Sign in through the real pages: password, then the second factor when enrolled."""
    token = csrf_token(client)
    r = client.post("/auth/login", data={"email": person.email, "password": person.password,
                                         "csrf_token": token})
    assert r.status_code == 302, r.data[:500]
    if r.headers["Location"].startswith("/auth/mfa"):
        token = csrf_token(client, "/auth/mfa")
        r = client.post("/auth/mfa", data={"code": person.next_code(), "csrf_token": token})
        assert r.status_code == 302 and not r.headers["Location"].startswith("/auth"), r.data[:500]


# The provider's bank account on statements (VietQR needs the bank's BIN); the ``provider_bank`` fixture sets it.
PROVIDER_BANK = {"PROVIDER_NAME": "Sổ Sách Sài Gòn", "PROVIDER_BANK_NAME": "Vietcombank",
                 "PROVIDER_BANK_BIN": "970436", "PROVIDER_BANK_ACCOUNT": "0071000123456",
                 "PROVIDER_ACCOUNT_NAME": "CONG TY SO SACH SAI GON"}


def put_on_plan(tenant: Tenant, *, currency: str = "VND", fee: int = 2_000_000, name: str = "Trọn gói",
                prices: tuple[tuple[str, int, int], ...] = (), tax_bp: int | None = None, discount_bp: int = 0):
    """A new plan (meter, included, unit price per line of ``prices``; the default tax unless ``tax_bp``) and
    ``tenant`` on it since 1 January 2025; commits. Returns the plan."""
    from datetime import date
    from decimal import Decimal

    from portal.billing.models import Plan, PlanPrice, PlanTaxRate, TenantPlan
    from tenants.context import for_tenant

    plan = Plan(key=unique("plan"), name=name, currency=currency, monthly_fee=fee, payment_days=15)
    plan.prices = [PlanPrice(meter=m, included=Decimal(i), unit_price=p) for m, i, p in prices]
    db.session.add(plan)
    db.session.flush()
    if tax_bp is not None:
        db.session.add(PlanTaxRate(plan_id=plan.id, rate_bp=tax_bp, effective_from=date(2025, 1, 1)))
    with for_tenant(tenant.id):
        db.session.add(TenantPlan(tenant_id=tenant.id, plan_id=plan.id, starts_on=date(2025, 1, 1),
                                  discount_bp=discount_bp))
        db.session.commit()
    return plan


class as_person:  # noqa: N801 - a context manager used like a function
    """Bind a tenant (its id, or anything with an ``id``: a test's world) as a request by ``person`` would;
    yields (their User, the Tenant), and rolls back whatever was left uncommitted on the way out."""

    def __init__(self, tenant, person) -> None:  # noqa: ANN001
        self.tenant_id = tenant if isinstance(tenant, uuid.UUID) else tenant.id
        self.person = person

    def __enter__(self) -> tuple[User, Tenant]:
        user = db.session.get(User, self.person.id)
        self.scope = bound(Scope(user_id=user.id, tenant_ids=frozenset({self.tenant_id}), role=self.person.role))
        self.scope.__enter__()
        return user, db.session.get(Tenant, self.tenant_id)

    def __exit__(self, *exc: object) -> None:
        db.session.rollback()
        self.scope.__exit__(*exc)
