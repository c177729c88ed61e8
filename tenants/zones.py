"""Every date is a date somewhere: a tenant's in its own time zone, the provider's in ``PROVIDER_TIMEZONE``.

The database stores UTC. What a tenant's date means (the day time was logged on, the month
its work and statements belong to, the day a recurring task opens) is decided in the
tenant's time zone; pages of the provider's that span clients (team load) use the provider's.

What a person *reads* follows one rule, :func:`reader_zone`: a tenant's pages show and take
dates in that tenant's zone; a client's other pages (notifications, account) in their own
company's; the provider's pages (and jobs) in the provider's. Flask-Babel's time zone selector
is this function, so ``format_datetime`` everywhere obeys it.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from flask import current_app, g, has_request_context
from flask_login import current_user
from sqlalchemy import select

from portal.extensions import db
from tenants.models import Tenant, utcnow
from tenants.reach import visible_tenants


def provider_zone() -> ZoneInfo:
    """The provider's own time zone (its pages over several clients)."""
    return ZoneInfo(current_app.config.get("PROVIDER_TIMEZONE") or "Asia/Ho_Chi_Minh")


def tenant_zone(tenant_id: uuid.UUID) -> ZoneInfo:
    """The tenant's time zone (read once per request; the page's own tenant is loaded already)."""
    cache = g.setdefault("_tenant_zones", {}) if has_request_context() else {}
    page_tenant = g.get("tenant") if has_request_context() else None
    if page_tenant is not None and page_tenant.id == tenant_id:
        return ZoneInfo(page_tenant.timezone)
    if tenant_id not in cache:
        cache[tenant_id] = ZoneInfo(db.session.scalar(select(Tenant.timezone).where(Tenant.id == tenant_id)) or "UTC")
    return cache[tenant_id]


def today_in(zone: ZoneInfo, now: datetime | None = None) -> date:
    """Today's date in ``zone``."""
    return (now or utcnow()).astimezone(zone).date()


def start_of_day(day: date, zone: ZoneInfo) -> datetime:
    """The instant ``day`` begins in ``zone`` (an aware datetime)."""
    return datetime.combine(day, time(0), tzinfo=zone)


def reader_zone() -> ZoneInfo:
    """The time zone the person reading this page sees and enters dates in (the module's one rule)."""
    if not has_request_context():
        return provider_zone()
    tenant = g.get("tenant")
    if tenant is not None:
        return ZoneInfo(tenant.timezone)
    if current_user and current_user.is_authenticated and not current_user.is_provider:
        companies = visible_tenants(current_user)
        if companies:
            return ZoneInfo(companies[0].timezone)
    return provider_zone()


def reader_today() -> date:
    """Today's date for the person reading (see :func:`reader_zone`)."""
    return today_in(reader_zone())
