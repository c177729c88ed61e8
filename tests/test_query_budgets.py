"""Query budgets: the SQL statements each page sends, at 5 and at 50 rows, against a budget written here.

One tenant is filled through the services (``_Filler``): documents, requests, tasks in every state, people,
the books, data entry, payroll, statements... topped up to 5 of each, every list page (``LISTS``) is read
once to warm what a process caches and once counted (``tests.querycount``); topped up to 50 of each, read
again. A page whose count grows with its rows sends a statement per row (an N+1): it fails, as does a page
over its budget. Every other GET page (``DETAILS``: details, forms, files) is read once at 50 rows against
its budget. ``test_every_get_route_has_a_budget`` fails for a GET route in neither table nor ``EXEMPT``, so a
new page cannot escape.

Budgets are the count measured when the page was added plus two statements: a budget is a decision, not a
measurement, and raising one is a change to review. ``bench/query_budgets.py`` prints the table of pages and
counts (and writes it into ``bench/README.md``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from flask import Flask
from werkzeug.exceptions import MethodNotAllowed, NotFound

from portal.extensions import db
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.policy import CLIENT_ROLES, Role
from tenants.zones import tenant_zone, today_in
from tests.factories import as_person, csrf_token, login, make_person, make_tenant, unique
from tests.querycount import count_queries

SMALL, LARGE = 5, 50
ANONYMOUS, SCRAPER = "anonymous", "metrics scraper"
TABLE_ENV = "QUERY_BUDGETS_TABLE"  # a path: the test writes the table of pages and counts there


@dataclass(frozen=True)
class Page:
    """A page and who reads it: ``path`` is formatted with the world's values (``{slug}``, ``{task}``...)."""

    path: str
    role: str
    budget: int
    status: int = 200
    once: bool = False  # the first read changes what the next finds (an archive deleted once fetched)
    slack: int = 0  # statements a list may add between SMALL and LARGE rows, where its comment says why


# --- the pages that show rows: counted at SMALL and LARGE rows of everything ---------------------------------

LISTS: dict[str, Page] = {
    # The client's workspace
    "home": Page("/t/{slug}/", "client_admin", 12),
    "documents": Page("/t/{slug}/documents", "client_admin", 22),
    "a document's versions": Page("/t/{slug}/documents/{versioned}", "client_admin", 25),
    "a bank statement's transactions": Page("/t/{slug}/documents/{bank_statement}", "client_admin", 26),
    "a task's comments": Page("/t/{slug}/tasks/{discussed_task}", "client_admin", 12),
    "a task's comments (staff)": Page("/t/{slug}/tasks/{discussed_task}", "staff", 14),
    "trash": Page("/t/{slug}/documents/trash", "client_admin", 10),
    "search": Page("/t/{slug}/search?q=invoice", "client_admin", 16),
    "requests": Page("/t/{slug}/requests", "client_admin", 10),
    "tasks": Page("/t/{slug}/tasks", "client_admin", 9),
    "tasks (staff)": Page("/t/{slug}/tasks", "staff", 12),
    "attachable documents": Page("/t/{slug}/tasks/attachable", "client_admin", 6),
    "approvals": Page("/t/{slug}/approvals", "client_admin", 8),
    "users": Page("/t/{slug}/users", "client_admin", 8),
    "access log": Page("/t/{slug}/access-log", "client_admin", 10),
    "tokens": Page("/t/{slug}/tokens", "client_admin", 8),
    "exports": Page("/t/{slug}/export", "client_admin", 8),
    "quarantine": Page("/t/{slug}/mail-in/quarantine", "client_admin", 8),
    "tenant KPIs": Page("/t/{slug}/kpi", "client_admin", 19),
    "time": Page("/t/{slug}/time", "manager", 9),
    "time CSV": Page("/t/{slug}/time.csv", "manager", 11),
    "statements": Page("/t/{slug}/statements", "client_admin", 8),
    "workspaces": Page("/tenants", "roaming", 5),
    "notifications": Page("/notifications", "staff", 6),
    # The books
    "books": Page("/t/{slug}/books", "client_admin", 11),
    "books dashboard": Page("/t/{slug}/books/dashboard", "client_admin", 24),
    "journal": Page("/t/{slug}/books/entries", "client_admin", 10),
    "journal CSV": Page("/t/{slug}/books/export.csv", "client_admin", 12),
    "chart of accounts": Page("/t/{slug}/books/accounts", "client_admin", 10),
    "account ledger": Page("/t/{slug}/books/accounts/131", "client_admin", 11),
    "trial balance": Page("/t/{slug}/books/trial-balance", "client_admin", 9),
    "profit and loss": Page("/t/{slug}/books/profit-and-loss", "client_admin", 9),
    "balance sheet": Page("/t/{slug}/books/balance-sheet", "client_admin", 9),
    "VAT": Page("/t/{slug}/books/vat", "client_admin", 11),
    "VAT lines": Page("/t/{slug}/books/vat/lines", "client_admin", 10),
    "months": Page("/t/{slug}/books/months", "client_admin", 11),
    "receivables": Page("/t/{slug}/books/receivables", "client_admin", 14),
    "payables": Page("/t/{slug}/books/payables", "client_admin", 14),
    "a customer's items": Page("/t/{slug}/books/receivables/{party}", "client_admin", 14),
    "bank accounts": Page("/t/{slug}/books/bank", "client_admin", 13),
    "reconciliation": Page("/t/{slug}/books/bank/{link}", "staff", 22),
    "reconciliation report": Page("/t/{slug}/books/bank/{link}/report", "client_admin", 19),
    "bank rules": Page("/t/{slug}/books/bank/rules", "staff", 11),
    "bank rules preview": Page("/t/{slug}/books/bank/rules/preview", "staff", 13),
    # Data entry and payroll
    "data entry": Page("/t/{slug}/data-entry", "staff", 12),
    "records": Page("/t/{slug}/data-entry/{template}/records", "client_admin", 9),
    "records CSV": Page("/t/{slug}/data-entry/{template}/records.csv", "client_admin", 12),
    "employees": Page("/t/{slug}/payroll/employees", "client_admin", 12),
    "attendance": Page("/t/{slug}/payroll/attendance/2026-11", "client_admin", 12),
    "attendance (this month)": Page("/t/{slug}/payroll/attendance", "staff", 12),
    "pay runs": Page("/t/{slug}/payroll/runs", "client_admin", 8),
    "pay run": Page("/t/{slug}/payroll/runs/2026-11", "client_admin", 14),
    "pay run summaries": Page("/t/{slug}/payroll/runs/2026-11/summaries", "client_admin", 9),
    "bank file": Page("/t/{slug}/payroll/runs/2026-11/bank-file.csv", "client_admin", 13),
    "insurance summary": Page("/t/{slug}/payroll/runs/2026-11/insurance.xlsx", "client_admin", 12),
    "finalisation": Page("/t/{slug}/payroll/finalisation/2026", "client_admin", 12),
    "finalisation (this year)": Page("/t/{slug}/payroll/finalisation", "client_admin", 12),
    "finalisation XLSX": Page("/t/{slug}/payroll/finalisation/2026.xlsx", "client_admin", 12),
    "an account's ledger (XLSX)": Page("/t/{slug}/books/accounts/131.xlsx", "client_admin", 14),
    "a report (XLSX)": Page("/t/{slug}/books/trial-balance.xlsx", "client_admin", 12),
    "a report (PDF)": Page("/t/{slug}/books/receivables.pdf", "client_admin", 17),
    # The logs' CSVs stream 500 events at a time, three statements a batch (clients/services.py EXPORT_BATCH,
    # stream_log): LARGE rows of everything leave more events than SMALL rows, a batch or two more.
    "access log CSV": Page("/t/{slug}/access-log.csv", "client_admin", 20, slack=6),
    "platform audit log CSV": Page("/provider/audit.csv?kind=plans&since={today}", "provider_admin", 9,
                                     slack=6),
    # The provider's side
    "provider dashboard": Page("/provider/", "manager", 13),
    "clients": Page("/provider/tenants", "manager", 5),
    "assignments": Page("/provider/assignments", "manager", 12),
    "staff": Page("/provider/staff", "manager", 6),
    "platform audit log": Page("/provider/audit", "provider_admin", 8),
    "plans": Page("/provider/plans", "provider_admin", 13),
    "month's statements": Page("/provider/statements?month=2020-01", "manager", 13),
    "my work": Page("/provider/work", "staff", 12),
    "team queues": Page("/provider/queues", "manager", 13),
    "team queue": Page("/provider/queues/bookkeeping", "manager", 13),
    "quality": Page("/provider/quality", "checker", 15),
    "KPIs": Page("/provider/kpi", "manager", 20),
    "load": Page("/provider/load", "manager", 16),
    # The API
    "API documents": Page("/api/v1/tenants/{slug}/documents", "client_admin", 10),
    "API a document's versions": Page("/api/v1/tenants/{slug}/documents/{versioned}", "client_admin", 16),
    "API a document's bank statements": Page("/api/v1/tenants/{slug}/documents/{bank_statement}/bank-statements",
                                             "client_admin", 20),
    "API a task's comments": Page("/api/v1/tenants/{slug}/tasks/{discussed_task}", "client_admin", 10),
    "API search": Page("/api/v1/tenants/{slug}/search?q=invoice", "client_admin", 16),
    "API intake": Page("/api/v1/tenants/{slug}/intake", "client_admin", 9),
    "API requests": Page("/api/v1/tenants/{slug}/document-requests", "client_admin", 10),
    "API tasks": Page("/api/v1/tenants/{slug}/tasks", "client_admin", 11),
    "API users": Page("/api/v1/tenants/{slug}/users", "client_admin", 9),
    "API audit events": Page("/api/v1/tenants/{slug}/audit-events", "client_admin", 9),
    "API exports": Page("/api/v1/tenants/{slug}/exports", "client_admin", 9),
    "API quarantine": Page("/api/v1/tenants/{slug}/mail-in/quarantine", "client_admin", 9),
    "API senders": Page("/api/v1/tenants/{slug}/mail-in/senders", "client_admin", 10),
    "API bank CSV mappings": Page("/api/v1/tenants/{slug}/bank-csv-mappings", "staff", 9),
    "API statements": Page("/api/v1/tenants/{slug}/statements", "client_admin", 9),
    "API quality checks": Page("/api/v1/tenants/{slug}/quality-checks", "checker", 9),
    "API time CSV": Page("/api/v1/tenants/{slug}/time.csv", "manager", 14),
    "API accounts": Page("/api/v1/tenants/{slug}/books/accounts", "client_admin", 10),
    "API entries": Page("/api/v1/tenants/{slug}/books/entries", "client_admin", 11),
    "API trial balance": Page("/api/v1/tenants/{slug}/books/trial-balance", "client_admin", 10),
    "API profit and loss": Page("/api/v1/tenants/{slug}/books/profit-and-loss", "client_admin", 10),
    "API balance sheet": Page("/api/v1/tenants/{slug}/books/balance-sheet", "client_admin", 10),
    "API VAT": Page("/api/v1/tenants/{slug}/books/vat", "client_admin", 12),
    "API ageing": Page("/api/v1/tenants/{slug}/books/ageing?kind=receivable", "client_admin", 15),
    "API books dashboard": Page("/api/v1/tenants/{slug}/books/dashboard", "client_admin", 25),
    "API bank accounts": Page("/api/v1/tenants/{slug}/books/bank-accounts", "client_admin", 14),
    "API unmatched": Page("/api/v1/tenants/{slug}/books/bank-accounts/{link}/unmatched", "staff", 21),
    "API reconciliation report": Page("/api/v1/tenants/{slug}/books/bank-accounts/{link}/report", "client_admin", 18),
    "API templates": Page("/api/v1/tenants/{slug}/data-entry/templates", "client_admin", 9),
    "API records": Page("/api/v1/tenants/{slug}/data-entry/templates/{template}/records", "client_admin", 10),
    "API employees": Page("/api/v1/tenants/{slug}/payroll/employees", "client_admin", 10),
    "API pay runs": Page("/api/v1/tenants/{slug}/payroll/runs", "client_admin", 10),
    "API pay run": Page("/api/v1/tenants/{slug}/payroll/runs/2026-11", "client_admin", 13),
    "API finalisation": Page("/api/v1/tenants/{slug}/payroll/finalisation/2026", "client_admin", 12),
}

# --- every other GET page: counted once, at LARGE rows --------------------------------------------------------

DETAILS: dict[str, Page] = {
    # Signing in, one's account, public pages
    "sign-in": Page("/auth/login", ANONYMOUS, 2),
    "second factor (no sign-in under way)": Page("/auth/mfa", ANONYMOUS, 2, 302),
    "second factor enrolment (no sign-in under way)": Page("/auth/mfa/enrol", ANONYMOUS, 2, 302),
    "second factor renewal": Page("/auth/mfa/renew", "client_admin", 5),
    "password reset": Page("/auth/reset", ANONYMOUS, 2),
    "password reset link (unknown)": Page("/auth/reset/not-a-token", ANONYMOUS, 3, 410),
    "invitation link (unknown)": Page("/auth/invite/not-a-token", ANONYMOUS, 4, 410),
    "payslip link (unknown)": Page("/payslip/not-a-token", ANONYMOUS, 5, 404),
    "start": Page("/", "client_admin", 4, 302),
    "account": Page("/account/", "client_admin", 6),
    "health": Page("/healthz", ANONYMOUS, 2),
    "metrics": Page("/metrics", SCRAPER, 8),
    "signing keys": Page("/keys", ANONYMOUS, 2),
    "signing keys (JSON)": Page("/keys.json", ANONYMOUS, 2),
    "a signing key": Page("/keys/{key_id}.pem", ANONYMOUS, 2),
    "certificate check": Page("/certificates/verify", ANONYMOUS, 2),
    "OpenAPI document": Page("/api/v1/openapi.json", ANONYMOUS, 2),
    # The client's workspace
    "a document": Page("/t/{slug}/documents/{document}", "client_admin", 25),
    "a document's file": Page("/t/{slug}/documents/{document}/download", "client_admin", 10),
    "a document's thumbnail": Page("/t/{slug}/documents/{document}/preview.png", "client_admin", 11),
    "a document's searchable copy": Page("/t/{slug}/documents/{document}/intake/searchable.pdf", "client_admin",
                                         14),
    "a document's page image": Page("/t/{slug}/documents/{document}/intake/page-1.png", "client_admin", 10),
    "a request": Page("/t/{slug}/requests/{request}", "client_admin", 10),
    "a task": Page("/t/{slug}/tasks/{task}", "client_admin", 12),
    "a task (staff)": Page("/t/{slug}/tasks/{done_task}", "checker", 13),
    "access log checkpoint": Page("/t/{slug}/access-log/checkpoint.json", "client_admin", 6),
    "an export's archive": Page("/t/{slug}/export/{export}/download", "client_admin", 15, once=True),
    "a statement": Page("/t/{slug}/statements/{statement}", "client_admin", 13),
    "a statement's PDF": Page("/t/{slug}/statements/{statement}/pdf", "client_admin", 11),
    "filing calendar": Page("/t/{slug}/filing-calendar", "client_admin", 9),
    # The books
    "an entry": Page("/t/{slug}/books/entries/{entry}", "client_admin", 11),
    "a new entry": Page("/t/{slug}/books/entries/new", "staff", 9),
    "renaming an account": Page("/t/{slug}/books/accounts/642101/name", "staff", 9),
    "a bank transaction": Page("/t/{slug}/books/bank/transactions/{transaction}", "staff", 26),
    # Data entry and payroll
    "a new template": Page("/t/{slug}/data-entry/new", "manager", 7),
    "a template": Page("/t/{slug}/data-entry/{template}/edit", "manager", 9),
    "keying": Page("/t/{slug}/data-entry/{template}/key?document=none", "staff", 10),
    "a record": Page("/t/{slug}/data-entry/{template}/records/{record}", "client_admin", 9),
    "an employee": Page("/t/{slug}/payroll/employees/{employee}", "client_admin", 9),
    "a new employee": Page("/t/{slug}/payroll/employees/new", "staff", 7),
    "an employee's form": Page("/t/{slug}/payroll/employees/{employee}/edit", "staff", 9),
    "importing employees": Page("/t/{slug}/payroll/import/employees", "staff", 7),
    "importing attendance": Page("/t/{slug}/payroll/import/attendance/2026-11", "staff", 7),
    "the employees template": Page("/t/{slug}/payroll/import/employees/template.xlsx", "staff", 4),
    "the attendance template": Page("/t/{slug}/payroll/import/attendance/2026-11/template.xlsx", "staff", 8),
    "an import's preview": Page("/t/{slug}/payroll/imports/{import}", "staff", 9),
    "payroll settings": Page("/t/{slug}/payroll/run-settings", "client_admin", 8),
    "a payslip": Page("/t/{slug}/payroll/runs/2026-11/payslips/{payslip}", "client_admin", 9),
    # The provider's side
    "a client": Page("/provider/tenants/{slug}", "manager", 18),
    "outbox": Page("/provider/outbox", "provider_admin", 5),
    "a plan": Page("/provider/plans/{plan}", "provider_admin", 12),
    "service lines": Page("/provider/service-lines", "provider_admin", 6),
    # The API
    "API me": Page("/api/v1/me", "client_admin", 5),
    "API workspaces": Page("/api/v1/tenants", "client_admin", 7),
    "API service lines": Page("/api/v1/service-lines", "client_admin", 7),
    "API a document": Page("/api/v1/tenants/{slug}/documents/{document}", "client_admin", 16),
    "API a document's file": Page("/api/v1/tenants/{slug}/documents/{document}/content", "client_admin", 13),
    "API a document's intake": Page("/api/v1/tenants/{slug}/documents/{bank_statement}/intake", "client_admin", 12),
    "API a request": Page("/api/v1/tenants/{slug}/document-requests/{request}", "client_admin", 10),
    "API a task": Page("/api/v1/tenants/{slug}/tasks/{task}", "client_admin", 10),
    "API a task's quality check": Page("/api/v1/tenants/{slug}/tasks/{done_task}/quality-check", "checker", 10),
    "API quality rates": Page("/api/v1/tenants/{slug}/quality-rates", "manager", 11),
    "API an export": Page("/api/v1/tenants/{slug}/exports/{export}", "client_admin", 9),
    "API an export's archive": Page("/api/v1/tenants/{slug}/exports/{api_export}/content", "client_admin", 18,
                                    once=True),
    "API filing calendar": Page("/api/v1/tenants/{slug}/filing-calendar", "client_admin", 10),
    "API intake address": Page("/api/v1/tenants/{slug}/mail-in/address", "client_admin", 9),
    "API plan": Page("/api/v1/tenants/{slug}/plan", "client_admin", 12),
    "API a statement": Page("/api/v1/tenants/{slug}/statements/{statement}", "client_admin", 13),
    "API a statement's PDF": Page("/api/v1/tenants/{slug}/statements/{statement}/pdf", "client_admin", 14),
    "API a record": Page("/api/v1/tenants/{slug}/data-entry/records/{record}", "client_admin", 9),
    "API an employee": Page("/api/v1/tenants/{slug}/payroll/employees/{employee}", "client_admin", 10),
}

# --- GET routes with no budget, and why ----------------------------------------------------------------------

EXEMPT: dict[str, str] = {
    "static": "files from disk; no database",
    "main.readyz": "the readiness probe checks the database on connections of its own (portal/health.py), outside "
                   "the engine counted here: one statement a part, by design",
}


# --- the world -----------------------------------------------------------------------------------------------

# The checker is staff who neither does nor reviews the tenant's work (it checks it); the roaming member is a
# client user whom the other clients (fill_tenants) take in too, so that the list of its workspaces grows.
PEOPLE = {"provider_admin": Role.PROVIDER_ADMIN, "manager": Role.MANAGER, "staff": Role.STAFF,
          "checker": Role.STAFF, "client_admin": Role.CLIENT_ADMIN, "client_approver": Role.CLIENT_APPROVER,
          "client_member": Role.CLIENT_MEMBER, "roaming": Role.CLIENT_MEMBER}


class _Filler:
    """Tops up every kind of row of the world's tenant to ``n``, through the services the pages use."""

    def __init__(self, app: Flask, world: SimpleNamespace) -> None:
        self.app, self.w = app, world
        self.made: dict[str, int] = {}

    def to(self, n: int) -> None:
        # In the order of their names: statements come before tenants, whom they put on the statements' plan.
        with self.app.app_context():
            for name in sorted(k for k in dir(self) if k.startswith("fill_")):
                kind = name.removeprefix("fill_")
                have = self.made.get(kind, 0)
                if have < n:
                    getattr(self, name)(have, n)
                    self.made[kind] = n

    def as_(self, key: str):  # noqa: ANN201 - as_person
        return as_person(self.w.tenant_id, self.w.people[key])

    # Each fill_<kind>(have, want) adds the rows want - have ... want - 1 (numbered, so names stay unique).

    def fill_documents(self, have: int, want: int) -> None:
        from portal.documents import services
        from tests.documents import samples

        with self.as_("client_admin") as (user, tenant):
            for i in range(have, want):
                target = services.upload_target(user, category="invoice", period="2026-03")
                result = services.upload(user, tenant, [samples.pdf(7000 + i)], filename=f"invoice-{i}.pdf",
                                         target=target)
                assert result.ok, result.message
                self.w.ids.setdefault("document", str(result.document.id))

    def fill_searchable(self, have: int, want: int) -> None:
        """Documents with words in them, read by intake (a second apiece: its preview, its text, its index), so
        that a search finds them: one in five documents (1, then 10)."""
        from portal.documents import services
        from portal.intake import chain

        for i in range(have // 5, want // 5):
            with self.as_("client_admin") as (user, tenant):
                result = services.upload(user, tenant, [_text_pdf(f"Invoice number {i} for the month")],
                                         filename=f"words-{i}.pdf", target=services.upload_target(user))
                assert result.ok, result.message
                doc_id = str(result.document.id)
            with self.as_("staff") as (_user, tenant):
                chain.start(tenant.id, doc_id, "1")  # what the stored document's event does, in a job
                db.session.commit()
                assert chain.run(doc_id, "1", chain.HEAVY_QUEUE) == "done"

    def fill_requests(self, have: int, want: int) -> None:
        from portal.documents import requests

        with self.as_("staff") as (user, tenant):
            for i in range(have, want):
                made = requests.create_request(user, tenant, title=f"Documents for month {i}", note=None,
                                               items=[requests.ItemInput(f"Bank statement {i}", "bank_statement"),
                                                      requests.ItemInput(f"Sales invoices {i}", "invoice")])
                self.w.ids.setdefault("request", str(made.id))

    def fill_tasks(self, have: int, want: int) -> None:
        """Tasks in turn: waiting in the bookkeeping queue, in progress with staff, awaiting the client's
        approval, done (and drawn for a check: the tenant's rate is 100 %), waiting on the client; staff log
        half an hour on each."""
        from portal.work import quality, services
        from portal.work import time as timing

        if have == 0:
            with self.as_("manager") as (user, tenant):
                quality.set_tenant_rate(user, tenant, line_key="bookkeeping", percent="100")
        staff, manager = (str(self.w.people[k].id) for k in ("staff", "manager"))
        for i in range(have, want):
            state = i % 5
            with self.as_("manager") as (user, tenant):
                task = services.create_task(user, tenant, title=f"Task {i}: post the invoices",
                                            service_line_key="bookkeeping", needs_approval=state == 2,
                                            due=date.today() + timedelta(days=30 + i),
                                            assignee_id=staff if state else None,
                                            reviewer_id=manager if state else None)
                task_id = str(task.id)
            self.w.ids.setdefault("task", task_id)
            moves = {0: [], 1: [("staff", "start")], 2: [("staff", "start"), ("staff", "submit"),
                                                         ("manager", "approve")],
                     3: [("staff", "start"), ("staff", "submit"), ("manager", "approve")],
                     4: [("staff", "ask_client")]}[state]
            for key, move in moves:
                with self.as_(key) as (user, tenant):
                    services.move(user, tenant, task_id, move, reason="Which bank account?" if move == "ask_client"
                                  else None)
            with self.as_("staff") as (user, tenant):
                # The tenant's today: after 17:00 UTC it is already tomorrow in Hanoi, where the task was opened.
                day = today_in(tenant_zone(tenant.id))
                timing.add_entry(user, task_id, day=day.isoformat(), minutes=30, billable=True)
            if state == 3:
                self.w.ids.setdefault("done_task", task_id)

    def fill_members(self, have: int, want: int) -> None:
        from portal.clients import services

        with self.as_("client_admin") as (user, tenant):
            for i in range(have, want):
                services.invite_member(user, tenant, f"{unique('invited')}@example.test", f"Invited {i}",
                                       "client_member", None)

    def fill_tokens(self, have: int, want: int) -> None:
        from portal.clients import services

        with self.as_("client_admin") as (user, tenant):
            for i in range(have, want):
                services.create_api_token(user, tenant, f"Script {i}", "read", None)

    def fill_trash(self, have: int, want: int) -> None:
        from portal.documents import services, trash
        from tests.documents import samples

        with self.as_("client_admin") as (user, tenant):
            for i in range(have, want):
                target = services.upload_target(user, category="receipt")
                doc = services.upload(user, tenant, [samples.pdf(9000 + i)], filename=f"wrong-{i}.pdf",
                                      target=target).document
                trash.trash(user, tenant, str(doc.id), reason="Uploaded twice")

    def fill_entries(self, have: int, want: int) -> None:
        """Sales on credit (every other one to the same customer, the others to a customer each) and purchases
        with input VAT, posted today; a sub-account of 6421 for each."""
        from portal.ledger import reports, services
        from portal.ledger.parties import party_key
        from portal.ledger.services import LineInput

        with self.as_("staff") as (user, tenant):
            today = today_in(tenant_zone(tenant.id))
            for i in range(have, want):
                customer = HOA_SEN if i % 2 else f"Khách hàng {i} (0{3100000000 + i})"
                sale = services.save_draft(user, tenant, today, [
                    LineInput("131", 11_000_000 + i, 0, f"Sale {i}", customer),
                    LineInput("5111", 0, 10_000_000 + i, f"Sale {i}"),
                    LineInput("33311", 0, 1_000_000, "VAT", tax_code="10")],
                    memo=f"Bán hàng {i}", due_date=today + timedelta(days=30), post_it=True)
                services.save_draft(user, tenant, today, [
                    LineInput("6422", 2_000_000, 0, f"Purchase {i}"),
                    LineInput("1331", 200_000, 0, "VAT", tax_code="10"),
                    LineInput("331", 0, 2_200_000, f"Purchase {i}", f"Nhà cung cấp {i}")],
                    memo=f"Mua hàng {i}", due_date=today + timedelta(days=30), post_it=True)
                services.add_account(user, tenant, "6421", f"6421{i + 1:02d}", f"Chi phí {i}", f"Expense {i}")
                self.w.ids.setdefault("entry", str(sale.id))
            self.w.ids.setdefault("party", reports.party_token(party_key(tenant.id, HOA_SEN)))

    def fill_bank(self, have: int, want: int) -> None:
        """A bank statement (OFX) of ``want`` transactions, one a day, read by intake: the first, then each size's
        as a new version of the same document (the reconciliation reads the current version); the bank account
        linked to 1121 after the first; a rule for each transaction, on its reference."""
        from portal.documents import services as vault
        from portal.intake import chain
        from portal.ledger import reconcile
        from tests.intake.bank_samples import Tx, ofx_v1

        first = date(2020, 1, 1)
        txs = [Tx(first + timedelta(days=i), Decimal(-100_000 - i), f"CONG TY {i}", None, f"REF{i:04d} phi",
                  f"B{i}") for i in range(want)]
        body = ofx_v1(BANK_ACCOUNT, "VND", first, txs[-1].day, txs, Decimal(100_000_000) + sum(t.amount for t in txs))
        with self.as_("client_admin") as (user, tenant):
            target = vault.upload_target(user, category="bank_statement", document_id=self.w.ids.get("bank_statement"))
            doc = vault.upload(user, tenant, [body], filename=f"vcb-{want}.ofx", target=target).document
            doc_id, version = str(doc.id), str(doc.current_version)
            self.w.ids["bank_statement"] = doc_id
        with self.as_("staff") as (user, tenant):
            chain.start(tenant.id, doc_id, version)  # what the stored document's event does, in a job
            db.session.commit()
            assert chain.run(doc_id, version, chain.HEAVY_QUEUE) == "done"
        with self.as_("staff") as (user, tenant):
            if have == 0:
                [seen] = reconcile.seen_accounts()
                self.w.ids["link"] = str(reconcile.link_account(user, tenant, seen.ref, "1121").id)
            for i in range(have, want):
                reconcile.save_rule(user, tenant, reconcile.RuleInput(reference=f"REF{i:04d}", direction="out",
                                                                      account="6422", description=f"Fee {i}"))
            link = reconcile.get_link(self.w.ids["link"])
            waiting = reconcile.unmatched(link)
            assert len(waiting) == want, len(waiting)
            self.w.ids["transaction"] = str(waiting[0].id)

    def fill_comments(self, have: int, want: int) -> None:
        """Comments on one task, by staff and by the client in turn (every fourth an internal note)."""
        from portal.work import services

        if have == 0:
            with self.as_("manager") as (user, tenant):
                self.w.ids["discussed_task"] = str(services.create_task(
                    user, tenant, title="Close the month", service_line_key="bookkeeping",
                    assignee_id=str(self.w.people["staff"].id)).id)
        for i in range(have, want):
            key = "client_admin" if i % 2 else "staff"
            with self.as_(key) as (user, _tenant):
                services.comment(user, self.w.ids["discussed_task"], f"Comment {i}", internal=i % 4 == 0)

    def fill_versions(self, have: int, want: int) -> None:
        """Versions of one document (its first upload is the first)."""
        from portal.documents import services
        from tests.documents import samples

        with self.as_("client_admin") as (user, tenant):
            for i in range(have, want):
                target = services.upload_target(user, category="contract", document_id=self.w.ids.get("versioned"))
                result = services.upload(user, tenant, [samples.pdf(11000 + i)], filename=f"contract-v{i + 1}.pdf",
                                         target=target)
                assert result.ok, result.message
                self.w.ids["versioned"] = str(result.document.id)

    def fill_dataentry(self, have: int, want: int) -> None:
        """Templates, and records of the first one (keyed from no document)."""
        from portal.dataentry import services
        from portal.dataentry.fields import FieldInput

        rows = [FieldInput(key="invoice_no", label="Invoice number", type="text", required=True, max_length="20"),
                FieldInput(key="total", label="Total", type="amount", required=True, min="1")]
        with self.as_("manager") as (user, tenant):
            for i in range(have, want):
                made = services.save_template(user, tenant, name=f"Template {i}", description=None, rows=rows,
                                              locale="en")
                self.w.ids.setdefault("template", str(made.id))
        with self.as_("staff") as (user, tenant):
            for i in range(have, want):
                saved = services.save_record(user, tenant, self.w.ids["template"],
                                             {"invoice_no": f"HD-{i:04d}", "total": "2,200,000"}, locale="en")
                self.w.ids.setdefault("record", str(saved.record.id))

    def fill_payroll(self, have: int, want: int) -> None:
        """Employees with November's attendance, November's run calculated over all of them and approved (the
        bank file and summaries need it), and runs opened for the months before it, as far as the rules go back
        (July 2024: 29 runs at most)."""
        from portal.payroll import runs
        from tests.payroll.test_runs import add_employee, attend

        world = SimpleNamespace(id=self.w.tenant_id, staff=self.w.people["staff"])
        for i in range(have, want):
            add_employee(world, f"E{i:03d}", 20_000_000 + 100_000 * i, dependants=i % 2)
            attend(world, f"E{i:03d}", PAY_MONTH, 21, 21)
        self.w.ids["employee"] = "E000"
        with self.as_("staff") as (user, tenant):
            run, _changed = runs.calculate(user, tenant, PAY_MONTH)
            self.w.ids["payslip"] = str(run.payslips[0].id)
            month = PAY_MONTH
            for _i in range(min(want, RUN_MONTHS) - 1):
                month = runs.previous_month(month)
                runs.open_run(user, tenant, month)  # a month opened already is found, not opened again
            runs.submit(user, tenant, PAY_MONTH, str(self.w.people["manager"].id))
        with self.as_("manager") as (user, tenant):
            runs.review(user, tenant, PAY_MONTH, approve=True)
        with self.as_("client_admin") as (user, tenant):
            run = runs.get_run(PAY_MONTH)
            runs.decide(user, tenant, PAY_MONTH, approve=True, seen_sha256=runs.summary_sha256(run))

    def fill_statements(self, have: int, want: int) -> None:
        """Monthly statements from January 2020 on (the plan starts then)."""
        from portal.billing.statements import run_for_tenant
        from portal.work.kpi import Month

        if have == 0:
            self.w.plan = _plan(self.w.tenant_id)
        for i in range(have, want):
            outcome = run_for_tenant(self.w.tenant_id, Month(2020 + i // 12, 1 + i % 12))
            assert outcome.state == "issued", outcome
            self.w.ids.setdefault("statement", str(outcome.statement_id))

    def fill_tenants(self, have: int, want: int) -> None:
        """Other clients: the manager is assigned to each, the roaming client user is a member of each, and
        each is billed for January 2020 (the provider's statements of that month list them)."""
        from portal.billing.models import TenantPlan
        from portal.billing.statements import run_for_tenant
        from portal.work.kpi import Month
        from tenants.context import for_tenant
        from tenants.models import Membership

        admin = db.session.get(User, self.w.people["provider_admin"].id)
        manager = db.session.get(User, self.w.people["manager"].id)
        for i in range(have, want):
            tenant = make_tenant(unique(f"Client {i}"))
            assign(admin, tenant, manager)
            with for_tenant(tenant.id):
                db.session.add(Membership(tenant_id=tenant.id, user_id=self.w.people["roaming"].id,
                                          role="client_member"))
                db.session.add(TenantPlan(tenant_id=tenant.id, plan_id=self.w.plan, starts_on=date(2020, 1, 1)))
                db.session.commit()
            assert run_for_tenant(tenant.id, Month(2020, 1)).state == "issued"

    def fill_staff(self, have: int, want: int) -> None:
        from portal.provider import services

        admin = db.session.get(User, self.w.people["provider_admin"].id)
        for i in range(have, want):
            services.invite_staff(admin, f"{unique('staff')}@example.test", f"Staff {i}", "staff", None)

    def fill_plans(self, have: int, want: int) -> None:
        from portal.billing import plans

        admin = db.session.get(User, self.w.people["provider_admin"].id)
        for i in range(have, want):
            key = unique("budget-plan")
            plans.create_plan(admin, key=key, name=f"Plan {i}", currency="VND", monthly_fee="2000000",
                              payment_days="15", locale="en")
            self.w.ids.setdefault("plan", key)

    def fill_mail(self, have: int, want: int) -> None:
        """Registered senders, and messages from strangers held in the quarantine."""
        from email.message import EmailMessage
        from email.utils import make_msgid

        from portal.intake.mail import addresses, receive, senders

        with self.as_("client_admin") as (user, tenant):
            if have == 0:
                addresses.rotate(user, tenant)
            for _i in range(have, want):
                senders.add(user, tenant, f"{unique('sender')}@supplier.test")
        for i in range(have, want):
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = f"stranger{i}@elsewhere.test", "in@portal.test", f"Invoice {i}"
            msg["Message-ID"] = make_msgid(domain="elsewhere.test")
            msg.set_content("Please find the invoice attached.")
            assert receive.deliver(self.w.tenant_id, msg.as_bytes()) == "held"

    def fill_exports(self, have: int, want: int) -> None:
        """Two exports built while the tenant holds little (each is fetched once: by the page, by the API), then
        exports asked for one after another (one at a time: each is marked expired before the next)."""
        from sqlalchemy import update

        from portal.offboarding import export
        from portal.offboarding.models import TenantExport

        with self.as_("client_admin") as (user, tenant):
            for key in ("export", "api_export")[have:want]:
                self.w.ids[key] = str(export.request_export(user, tenant).id)
                assert export.build_export(self.w.ids[key])
            for _i in range(max(have, 2), want):
                made = export.request_export(user, tenant)
                db.session.execute(update(TenantExport).where(TenantExport.id == made.id).values(state="expired"))
                db.session.commit()

    def fill_mappings(self, have: int, want: int) -> None:
        from portal.intake.bank import services

        with self.as_("staff") as (user, tenant):
            for i in range(have, want):
                services.save_mapping(user, tenant, ["Ngày", "Số tiền", f"Diễn giải {i}"], services.MappingInput(
                    bank=f"Bank {i}", date_format="%d/%m/%Y", decimal=",", currency="VND",
                    columns={"date": 0, "amount": 1}), None)


    def finish(self) -> None:
        """What the other pages show that no list needs: a document read by intake, a thumbnail, a statement's
        PDF, a signed checkpoint of the access log, an import waiting for its confirmation, the signing key's id."""
        from portal.billing.documents import store_pdf
        from portal.documents import services as vault
        from portal.documents.models import Document
        from portal.intake import chain
        from portal.payroll import imports
        from portal.trust.anchors import write_checkpoints
        from portal.trust.views import _keys

        with self.app.app_context():
            with self.as_("staff") as (user, tenant):  # the first document read by intake: its scan made searchable
                chain.start(tenant.id, self.w.ids["document"], "1")
                db.session.commit()
                assert chain.run(self.w.ids["document"], "1", chain.HEAVY_QUEUE) == "done"
            with self.as_("client_admin") as (user, tenant):
                doc = db.session.get(Document, uuid.UUID(self.w.ids["document"]))
                object_id = doc.latest.object_id
                vault.make_thumbnail(object_id)
                db.session.commit()
                store_pdf(self.w.ids["statement"])
                db.session.commit()
            write_checkpoints()
            rows = [["code", "base_salary"]] + [[f"E{i:03d}", 30_000_000 + i] for i in range(LARGE)]
            content = "\n".join(",".join(str(c) for c in row) for row in rows).encode()
            with self.as_("staff") as (user, tenant):
                preview = imports.upload(user, tenant, "employees", content, filename="raises.csv")
                assert preview.import_id, preview
                self.w.ids["import"] = str(preview.import_id)
            self.w.ids["key_id"] = _keys()[0].key_id


HOA_SEN = "Công ty TNHH Hoa Sen (0101234567)"
BANK_ACCOUNT = "0011004123456"
PAY_MONTH = date(2026, 11, 1)
RUN_MONTHS = 29  # July 2024 (the first payroll rules) to November 2026


def _text_pdf(text: str) -> bytes:
    """A one-page PDF with ``text`` (ASCII) in its text layer: read without OCR."""
    stream = f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _plan(tenant_id: uuid.UUID) -> uuid.UUID:
    """A plan from January 2020 and the tenant on it (``tests.factories.put_on_plan``, an earlier start)."""
    from portal.billing.models import Plan, PlanPrice, TenantPlan
    from tenants.context import for_tenant

    plan = Plan(key=unique("budget"), name="Budget", currency="VND", monthly_fee=2_000_000, payment_days=15)
    plan.prices = [PlanPrice(meter="documents_received", included=Decimal(10), unit_price=5_000)]
    db.session.add(plan)
    db.session.flush()
    with for_tenant(tenant_id):
        db.session.add(TenantPlan(tenant_id=tenant_id, plan_id=plan.id, starts_on=date(2020, 1, 1)))
        db.session.commit()
    return plan.id


@pytest.fixture(scope="module")
def qworld(app: Flask) -> SimpleNamespace:
    """A tenant with its books on, a person of every role, the provider's people assigned to it."""
    with app.app_context():
        tenant = make_tenant(unique("Budget Co"))
        people = {key: make_person(role, tenant if role in CLIENT_ROLES else None) for key, role in PEOPLE.items()}
        admin = db.session.get(User, people["provider_admin"].id)
        for key in ("manager", "staff", "checker"):
            assign(admin, db.session.get(Tenant, tenant.id), db.session.get(User, people[key].id))
        db.session.commit()
        world = SimpleNamespace(tenant_id=tenant.id, slug=tenant.slug, people=people, ids={})
        with as_person(world.tenant_id, people["provider_admin"]) as (user, bound_tenant):
            from portal.ledger import services

            services.start_books(user, bound_tenant, "vn_tt133")
    return world


@pytest.fixture(scope="module")
def reader(app: Flask, qworld: SimpleNamespace) -> Callable:
    """``get(role, path)``: a GET as the role's signed-in browser, or with its API token for ``/api/`` (both made
    when first needed); anonymous; or as Prometheus with the metrics token."""
    from tests.api.util import issue_token
    from tests.factories import TenantRef

    browsers: dict[str, object] = {}
    tokens: dict[str, str] = {}
    ref = TenantRef(qworld.tenant_id, qworld.slug, "")

    def get(role: str, path: str):  # noqa: ANN202
        if role == ANONYMOUS:
            return app.test_client().get(path)
        if role == SCRAPER:  # Prometheus, with the metrics token (set for this request only)
            saved = app.config.get("METRICS_TOKEN")
            app.config["METRICS_TOKEN"] = "query-budgets-scrape"  # noqa: S105 - a test's token
            try:
                return app.test_client().get(path, headers={"Authorization": "Bearer query-budgets-scrape"})
            finally:
                app.config["METRICS_TOKEN"] = saved
        if path.startswith("/api/"):
            if role not in tokens:
                tokens[role] = issue_token(app, qworld.people[role], ref, "write", name=f"budget {role}")
            return app.test_client().get(path, headers={"Authorization": f"Bearer {tokens[role]}"})
        if role not in browsers:
            browser = app.test_client()
            login(browser, qworld.people[role])
            csrf_token(browser, "/account/")
            browsers[role] = browser
        return browsers[role].get(path)

    return get


def _values(world: SimpleNamespace) -> dict[str, str]:
    return {"slug": world.slug, "today": date.today().isoformat(), **world.ids}


# A sign-in session and an API token note when they were last used at most once a minute
# (portal/auth/sessions.py TOUCH_EVERY, portal/api/tokens.py LAST_USED_RESOLUTION): a write of the clock's
# making, not the page's. A read that carried one is read once more; the next cannot carry it again.
TOUCHES = ("UPDATE auth_sessions SET last_seen_at", "UPDATE api_tokens SET last_used_at")


class WrongAnswer(AssertionError):
    """A page answered another status than its table says: its count would be some error page's."""


def _count(app: Flask, get: Callable, page: Page, values: dict[str, str]) -> tuple[int, str]:
    """The statements of one read of ``page`` (its whole body: some stream) after a first read, so that what a
    process caches is warm; a page read ``once`` is counted on its first read."""
    path = page.path.format(**values)
    if not page.once:
        first = get(page.role, path)
        if first.status_code != page.status:
            raise WrongAnswer(f"{page.role} GET {path}: {first.status_code} {first.get_data()[:300]!r}")
    for _attempt in range(2):
        with app.app_context(), count_queries() as counted:
            again = get(page.role, path)
            again.get_data()
        if again.status_code != page.status:
            raise WrongAnswer(f"{page.role} GET {path}: {again.status_code} {again.get_data()[:300]!r}")
        if page.once or not any(s.startswith(TOUCHES) for s in counted.statements):
            break
    return counted.n, str(counted)


def _measure(app: Flask, get: Callable, page: Page, values: dict[str, str], into: dict, size: int) -> None:
    try:
        into[size], into[f"sql{size}"] = _count(app, get, page, values)
    except WrongAnswer as exc:
        into.setdefault("wrong", str(exc))


@pytest.fixture(scope="module")
def measured(app: Flask, qworld: SimpleNamespace, reader: Callable) -> dict[str, dict]:
    """Every list page counted at SMALL and at LARGE rows, then every other page at LARGE rows."""
    filler = _Filler(app, qworld)
    out: dict[str, dict] = {name: {} for name in LISTS} | {name: {} for name in DETAILS}
    for size in (SMALL, LARGE):
        filler.to(size)
        values = _values(qworld)
        for name, page in LISTS.items():
            _measure(app, reader, page, values, out[name], size)
    filler.finish()
    values = _values(qworld)
    for name, page in DETAILS.items():
        _measure(app, reader, page, values, out[name], LARGE)
    if os.environ.get(TABLE_ENV):
        _write_table(os.environ[TABLE_ENV], out)
    return out


def _write_table(path: str, out: dict[str, dict]) -> None:
    """The table of ``bench/README.md`` ("What a page costs"), and every page's statements beside it."""
    lines = [f"| Page | Reader | Statements at {SMALL} rows | at {LARGE} rows | Budget |",
             "|---|---|---:|---:|---:|"]
    for name, page in {**LISTS, **DETAILS}.items():
        got = out[name]
        small = got.get(SMALL, "?") if name in LISTS else "–"
        status = "" if page.status == 200 else f" ({page.status})"
        lines.append(f"| {name}: `{page.path}`{status} | {page.role} | {small} | {got.get(LARGE, '?')} | "
                     f"{page.budget} |")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    with open(f"{path}.sql", "w", encoding="utf-8") as f:
        for name, page in {**LISTS, **DETAILS}.items():
            got = out[name]
            f.write(f"\n## {name}: {page.role} GET {page.path}\n{got.get(f'sql{LARGE}') or got.get('wrong')}\n")


def _statements(page: Page, got: dict, size: int) -> str:
    return f"--- {page.role} GET {page.path}, at {size} rows:\n{got[f'sql{size}']}"


@pytest.mark.parametrize("name", list(LISTS))
def test_a_list_page_sends_as_many_statements_for_50_rows_as_for_5_and_stays_in_its_budget(name, measured):
    page, got = LISTS[name], measured[name]
    assert "wrong" not in got, got["wrong"]
    assert got[SMALL] <= got[LARGE] <= got[SMALL] + page.slack, (
        f"{got[SMALL]} statements at {SMALL} rows, {got[LARGE]} at {LARGE}: a statement a row?\n"
        + _statements(page, got, LARGE))
    assert got[LARGE] <= page.budget, f"{got[LARGE]} statements, over the budget of {page.budget}\n" + _statements(
        page, got, LARGE)


@pytest.mark.parametrize("name", list(DETAILS))
def test_a_page_stays_in_its_budget(name, measured):
    page, got = DETAILS[name], measured[name]
    assert "wrong" not in got, got["wrong"]
    assert got[LARGE] <= page.budget, f"{got[LARGE]} statements, over the budget of {page.budget}\n" + _statements(
        page, got, LARGE)


def _endpoint(app: Flask, path: str) -> str:
    adapter = app.url_map.bind("localhost")
    try:
        return adapter.match(path.split("?", 1)[0], method="GET")[0]
    except (NotFound, MethodNotAllowed):
        return f"(no GET route for {path})"


def test_every_get_route_has_a_budget(app):
    """A GET route is a list page, another page with a budget, or exempt with a reason: nothing escapes."""
    tabled: dict[str, list[str]] = {}
    for name, page in {**LISTS, **DETAILS}.items():
        tabled.setdefault(_endpoint(app, page.path.format_map(_Anything())), []).append(name)
    gets = {rule.endpoint for rule in app.url_map.iter_rules() if "GET" in (rule.methods or ())}
    assert sorted(gets - set(tabled) - set(EXEMPT)) == [], "GET routes without a budget (or an exemption)"
    assert sorted(e for e in tabled if e not in gets) == [], "pages in the tables that match no GET route"
    assert sorted(set(EXEMPT) & set(tabled)) == [], "exempt routes that have a budget after all"


class _Anything(dict):
    """Any value a path names: enough to find its route."""

    def __missing__(self, key: str) -> str:
        return str(uuid.UUID(int=0))
