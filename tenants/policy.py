"""The authorisation table: which role may do which action to which kind of object.

Read it as a table. Every route names one action (``portal.access.requires``);
one ``before_request`` hook checks it, and the services check it again for jobs
and the API. Tenant isolation (which tenant's rows) is decided elsewhere, once,
by ``tenants.isolation``; this table decides what a role may do *inside* a tenant
it can see, and what provider roles may do on the provider side.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    PROVIDER_ADMIN = "provider_admin"
    MANAGER = "manager"
    STAFF = "staff"
    CLIENT_ADMIN = "client_admin"
    CLIENT_APPROVER = "client_approver"
    CLIENT_MEMBER = "client_member"


PROVIDER_ROLES = (Role.PROVIDER_ADMIN, Role.MANAGER, Role.STAFF)
CLIENT_ROLES = (Role.CLIENT_ADMIN, Role.CLIENT_APPROVER, Role.CLIENT_MEMBER)
# Client people who give their company's word on work (approve or reject it).
APPROVER_ROLES = (Role.CLIENT_ADMIN, Role.CLIENT_APPROVER)
ALL_ROLES = PROVIDER_ROLES + CLIENT_ROLES

PA, MG, ST = Role.PROVIDER_ADMIN, Role.MANAGER, Role.STAFF
CA, CP, CM = Role.CLIENT_ADMIN, Role.CLIENT_APPROVER, Role.CLIENT_MEMBER

# Actions inside one tenant ("tenant:<object>.<verb>"): the role is the caller's
# role in that tenant (client membership, or provider role with an assignment).
# Actions on the provider side ("provider:<object>.<verb>"): the caller's provider role.
# Actions of any signed-in user on their own account ("account:<verb>").
TABLE: dict[str, frozenset[Role]] = {
    # action                          who may
    "tenant:home.view":               frozenset({PA, MG, ST, CA, CP, CM}),
    "tenant:users.view":              frozenset({PA, MG, ST, CA}),
    "tenant:users.manage":            frozenset({PA, CA}),
    "tenant:settings.manage":         frozenset({PA, CA}),
    "tenant:audit.view":              frozenset({PA, MG, CA}),
    "tenant:tokens.manage":           frozenset({PA, MG, ST, CA, CP, CM}),
    # Everything the client owns, in one encrypted archive (before leaving, or any time).
    "tenant:export.manage":           frozenset({PA, CA}),
    # Documents: members see their own uploads only (services narrow to them);
    # everyone else who is in the tenant sees all of its documents.
    "tenant:documents.view":          frozenset({PA, MG, ST, CA, CP, CM}),
    "tenant:documents.view_all":      frozenset({PA, MG, ST, CA, CP}),
    "tenant:documents.upload":        frozenset({PA, MG, ST, CA, CP, CM}),
    "tenant:documents.refile":        frozenset({PA, MG, ST, CA}),
    # Removing puts a document in the trash (who may remove it may see the trash); it is purged after
    # TRASH_RETENTION_DAYS. Bringing it back is the provider's decision.
    "tenant:documents.trash":         frozenset({PA, MG, ST, CA, CP}),
    "tenant:documents.restore":       frozenset({PA, MG}),
    # Intake: what reading a document found, beside the document; trying a file that failed again is staff's.
    "tenant:intake.view":             frozenset({PA, MG, ST, CA, CP, CM}),
    "tenant:intake.retry":            frozenset({PA, MG, ST}),
    "tenant:intake.correct":          frozenset({PA, MG, ST}),
    # Which column of a bank's CSV export holds what (saved per bank for the tenant): staff's, like a retry.
    "tenant:intake.map":              frozenset({PA, MG, ST}),
    # E-mail in: whoever may upload sees the tenant's intake address; its admin (or the provider admin, as for
    # settings) rotates it and keeps the registered senders; what mail is held in the quarantine, and whether it
    # goes into the vault, is the client admin's own decision.
    "tenant:mailin.view":             frozenset({PA, MG, ST, CA, CP, CM}),
    "tenant:mailin.manage":           frozenset({PA, CA}),
    "tenant:mailin.quarantine":       frozenset({CA}),
    # The books: the client's admin and approver read them; staff keep them and start a month's closing (a
    # task a second person reviews and the client approves); a closed month is reopened only by the provider's
    # admin with a reason; bookkeeping is switched on by the provider's admin or manager.
    "tenant:ledger.view":             frozenset({PA, MG, ST, CA, CP}),
    "tenant:ledger.keep":             frozenset({PA, MG, ST}),
    "tenant:ledger.setup":            frozenset({PA, MG}),
    "tenant:ledger.close":            frozenset({PA, MG, ST}),
    "tenant:ledger.reopen":           frozenset({PA}),
    # Data entry: the provider's admin or manager defines what is keyed (templates); its people key records
    # from the documents; the client's admin and approver read and download the records.
    "tenant:dataentry.view":          frozenset({PA, MG, ST, CA, CP}),
    "tenant:dataentry.key":           frozenset({PA, MG, ST}),
    "tenant:dataentry.setup":         frozenset({PA, MG}),
    # The filing calendar (statutory deadlines from the books' settings): read by whoever reads the books; its
    # settings (VAT period, payroll, fiscal year) are the provider's admin's or manager's, like switching them on.
    "tenant:filing.view":             frozenset({PA, MG, ST, CA, CP}),
    "tenant:filing.setup":            frozenset({PA, MG}),
    # Payroll's people: the client's admin and approver read the employees and their attendance (national ids,
    # bank accounts and salaries masked); the provider's people keep them (forms, the grid, imports). Showing a
    # masked value in full is audited in the client's access log: the provider's people, who need it for filings
    # and bank files, and the client's admin, who answers for its people's data; not the approver, who approves
    # pay runs on their figures and has no need of an id or an account number.
    "tenant:payroll.view":            frozenset({PA, MG, ST, CA, CP}),
    "tenant:payroll.keep":            frozenset({PA, MG, ST}),
    "tenant:payroll.reveal":          frozenset({PA, MG, ST, CA}),
    "tenant:requests.view":           frozenset({PA, MG, ST, CA, CP, CM}),
    "tenant:requests.manage":         frozenset({PA, MG, ST}),
    # A client answers an item "we don't have this / not applicable", with a reason (the provider's
    # people reopen it under requests.manage).
    "tenant:requests.answer":         frozenset({CA, CP, CM}),
    # Work: every move is further limited by the state machine's own table (portal.work.states.WHO):
    # the assignee works, the reviewer reviews (never their own work), the client answers and approves.
    "tenant:tasks.view":              frozenset({PA, MG, ST, CA, CP, CM}),
    "tenant:tasks.create":            frozenset({PA, MG, ST}),
    "tenant:tasks.assign":            frozenset({PA, MG}),
    "tenant:tasks.move":              frozenset({PA, MG, ST, CA, CP, CM}),
    "tenant:tasks.comment":           frozenset({PA, MG, ST, CA, CP, CM}),
    "tenant:tasks.request":           frozenset({CA, CP, CM}),    # a client asks for work
    "tenant:tasks.link":              frozenset({PA, MG, ST, CA, CP, CM}),
    # KPIs: one tenant's figures beside the provider's targets (client side: the client admin only).
    "tenant:kpi.view":                frozenset({PA, MG, CA}),
    "tenant:kpi.manage":              frozenset({PA, MG}),
    # Time on tasks: the provider's people log it; managers read a client's month. Clients never see time.
    "tenant:time.log":                frozenset({PA, MG, ST}),
    "tenant:time.view":               frozenset({PA, MG}),
    # Quality control by sampling: finished work drawn at random is checked by a provider person who
    # neither did nor reviewed it (portal.work.quality narrows to them); clients never see the checks.
    "tenant:quality.check":           frozenset({PA, MG, ST}),
    "tenant:quality.manage":          frozenset({PA, MG}),    # a client's own sampling rates
    # Statements: the client's admin and approvers read, approve or dispute them (members see no money);
    # the provider's admin and managers read them, record payments and correct them; staff see no prices.
    "tenant:statements.view":         frozenset({PA, MG, CA, CP}),
    "tenant:statements.approve":      frozenset({CA, CP}),
    "tenant:statements.manage":       frozenset({PA, MG}),     # record a payment, issue a correction
    "tenant:statements.pay":          frozenset({CA}),         # card or payment method, on Stripe's own pages
    "tenant:plan.manage":             frozenset({PA}),         # which plan a client is on, from when
    "provider:console.view":          frozenset({PA, MG, ST}),
    "provider:work.view":             frozenset({PA, MG, ST}),
    "provider:kpi.view":              frozenset({PA, MG}),
    "provider:load.view":             frozenset({PA, MG}),
    "provider:lines.manage":          frozenset({PA}),
    "provider:quality.check":         frozenset({PA, MG, ST}),  # the check queue over the person's clients
    "provider:quality.manage":        frozenset({PA, MG}),      # the provider-wide sampling rates
    "provider:statements.view":       frozenset({PA, MG}),      # the month's statements over the clients
    "provider:plans.manage":          frozenset({PA}),          # plans, their prices and tax rates
    "provider:tenants.view":          frozenset({PA, MG}),
    "provider:tenants.manage":        frozenset({PA}),
    "provider:tenants.offboard":      frozenset({PA}),
    "provider:staff.view":            frozenset({PA, MG}),
    "provider:staff.manage":          frozenset({PA}),
    "provider:assignments.manage":    frozenset({PA, MG}),
    "provider:audit.view":            frozenset({PA}),
    "account:manage":                 frozenset(ALL_ROLES),
    "account:notifications":          frozenset(ALL_ROLES),
}

# Provider roles that see every tenant without an assignment.
SEES_ALL_TENANTS = frozenset({PA})


def allowed(role: Role | str | None, action: str) -> bool:
    """True when ``role`` may perform ``action``; unknown actions are refused."""
    if role is None:
        return False
    return Role(role) in TABLE.get(action, frozenset())


def scope_of(action: str) -> str:
    """'tenant', 'provider' or 'account': where the role for ``action`` comes from."""
    return action.split(":", 1)[0]


def is_client(role: Role | str | None) -> bool:
    """True for client-side roles (they never see provider-internal content)."""
    return role is not None and Role(role) in CLIENT_ROLES
