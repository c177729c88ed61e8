"""The authorisation table, written out: every action x every role, yes or no, by the product's rules.

The expected decisions are typed here, not read from ``tenants.policy.TABLE``: a change to
the table must change this file too, on purpose. The rules they come from:

* provider admin: everything on the provider side, and every tenant;
* manager: assigns, reviews and reads the KPIs of the tenants they manage;
* staff: work the queues of the tenants they are assigned to;
* client admin: manages the tenant's users and sees everything of their own tenant;
* client approver: approves or rejects work (and sees the tenant's documents and work);
* client member: uploads, answers requests, sees their own uploads and the requests.
"""

from __future__ import annotations

import pytest

from tenants.policy import TABLE, Role, allowed

ROLES = ("provider_admin", "manager", "staff", "client_admin", "client_approver", "client_member")

# action: the roles that may, in the order of ROLES (PA, MG, ST, CA, CP, CM); "-" may not.
EXPECTED = {
    "tenant:home.view":            "PA MG ST CA CP CM",
    "tenant:users.view":           "PA MG ST CA -  - ",
    "tenant:users.manage":         "PA -  -  CA -  - ",
    "tenant:settings.manage":      "PA -  -  CA -  - ",
    "tenant:audit.view":           "PA MG -  CA -  - ",
    "tenant:tokens.manage":        "PA MG ST CA CP CM",  # each person their own tokens
    "tenant:export.manage":        "PA -  -  CA -  - ",  # the client's whole data: its admin, or the provider's
    "tenant:documents.view":       "PA MG ST CA CP CM",  # members: their own uploads (services narrow)
    "tenant:documents.view_all":   "PA MG ST CA CP - ",
    "tenant:documents.upload":     "PA MG ST CA CP CM",
    "tenant:documents.refile":     "PA MG ST CA -  - ",
    "tenant:documents.trash":      "PA MG ST CA CP - ",  # remove to the trash, and see the trash
    "tenant:documents.restore":    "PA MG -  -  -  - ",  # restoring is the provider's
    "tenant:intake.view":          "PA MG ST CA CP CM",  # what was read from a document, beside it
    "tenant:intake.retry":         "PA MG ST -  -  - ",  # trying a file that failed again is staff's
    "tenant:intake.correct":       "PA MG ST -  -  - ",  # correcting fields read from an invoice is staff's
    "tenant:ledger.view":          "PA MG ST CA CP - ",  # the books: the client's admin and approver read them
    "tenant:ledger.keep":          "PA MG ST -  -  - ",  # staff keep them
    "tenant:ledger.setup":         "PA MG -  -  -  - ",  # bookkeeping switched on, the chart chosen
    "tenant:ledger.close":         "PA MG ST -  -  - ",  # starts a month's closing: a second person reviews it
    "tenant:ledger.reopen":        "PA -  -  -  -  - ",  # reopened by the provider's admin only, with a reason
    "tenant:dataentry.view":       "PA MG ST CA CP - ",  # records keyed from documents: the client reads them
    "tenant:dataentry.key":        "PA MG ST -  -  - ",  # the provider's people key them
    "tenant:dataentry.setup":      "PA MG -  -  -  - ",  # templates: fields, types, rules
    "tenant:filing.view":          "PA MG ST CA CP - ",  # the filing calendar: whoever reads the books
    "tenant:filing.setup":         "PA MG -  -  -  - ",  # its settings, like switching the books on
    "tenant:payroll.view":         "PA MG ST CA CP - ",  # employees and attendance, ids and salaries masked
    "tenant:payroll.keep":         "PA MG ST -  -  - ",  # the provider's people keep them
    "tenant:payroll.reveal":       "PA MG ST CA -  - ",  # a masked value in full, audited: not the approver
    "tenant:intake.map":           "PA MG ST -  -  - ",  # a bank's CSV columns, saved for the tenant
    "tenant:mailin.view":          "PA MG ST CA CP CM",  # the intake address: whoever may upload
    "tenant:mailin.manage":        "PA -  -  CA -  - ",  # rotate the address, registered senders (as settings)
    "tenant:mailin.quarantine":    "-  -  -  CA -  - ",  # held mail: the client admin's own decision
    "tenant:requests.view":        "PA MG ST CA CP CM",
    "tenant:requests.manage":      "PA MG ST -  -  - ",
    "tenant:requests.answer":      "-  -  -  CA CP CM",  # "not applicable", with a reason; the provider reopens
    "tenant:tasks.view":           "PA MG ST CA CP CM",
    "tenant:tasks.create":         "PA MG ST -  -  - ",
    "tenant:tasks.assign":         "PA MG -  -  -  - ",
    "tenant:tasks.move":           "PA MG ST CA CP CM",  # each move further limited by portal.work.states
    "tenant:tasks.comment":        "PA MG ST CA CP CM",
    "tenant:tasks.request":        "-  -  -  CA CP CM",  # a client asks for work
    "tenant:tasks.link":           "PA MG ST CA CP CM",
    "tenant:kpi.view":             "PA MG -  CA -  - ",
    "tenant:kpi.manage":           "PA MG -  -  -  - ",
    "tenant:time.log":             "PA MG ST -  -  - ",
    "tenant:time.view":            "PA MG -  -  -  - ",  # clients never see time
    "tenant:quality.check":        "PA MG ST -  -  - ",  # never the worker or reviewer (services narrow)
    "tenant:quality.manage":       "PA MG -  -  -  - ",  # a client's own sampling rates
    "tenant:statements.view":      "PA MG -  CA CP - ",  # members see no money; staff no prices
    "tenant:statements.approve":   "-  -  -  CA CP - ",  # the client's word on a statement
    "tenant:statements.manage":    "PA MG -  -  -  - ",  # payments, corrections
    "tenant:statements.pay":       "-  -  -  CA -  - ",  # a card on Stripe's pages: the client admin only
    "tenant:plan.manage":          "PA -  -  -  -  - ",
    "provider:console.view":       "PA MG ST -  -  - ",
    "provider:work.view":          "PA MG ST -  -  - ",
    "provider:kpi.view":           "PA MG -  -  -  - ",
    "provider:load.view":          "PA MG -  -  -  - ",
    "provider:lines.manage":       "PA -  -  -  -  - ",
    "provider:quality.check":      "PA MG ST -  -  - ",  # the check queue over their own clients
    "provider:quality.manage":     "PA MG -  -  -  - ",  # provider-wide sampling rates
    "provider:statements.view":    "PA MG -  -  -  - ",
    "provider:plans.manage":       "PA -  -  -  -  - ",
    "provider:tenants.view":       "PA MG -  -  -  - ",
    "provider:tenants.manage":     "PA -  -  -  -  - ",
    "provider:tenants.offboard":   "PA -  -  -  -  - ",
    "provider:staff.view":         "PA MG -  -  -  - ",
    "provider:staff.manage":       "PA -  -  -  -  - ",
    "provider:assignments.manage": "PA MG -  -  -  - ",  # managers: of the tenants they manage
    "provider:audit.view":         "PA -  -  -  -  - ",
    "account:manage":              "PA MG ST CA CP CM",
    "account:notifications":       "PA MG ST CA CP CM",
}
ABBREVIATIONS = {"PA": "provider_admin", "MG": "manager", "ST": "staff",
                 "CA": "client_admin", "CP": "client_approver", "CM": "client_member"}


def _may(cells: str) -> dict[str, bool]:
    marks = cells.split()
    assert len(marks) == len(ROLES)
    for role, mark in zip(ROLES, marks, strict=True):
        assert mark == "-" or ABBREVIATIONS[mark] == role, f"column of {role} says {mark}"
    return {role: mark != "-" for role, mark in zip(ROLES, marks, strict=True)}


CASES = [(action, role, may) for action, cells in EXPECTED.items() for role, may in _may(cells).items()]
# Names a route could carry by mistake: near misses, other scopes, case, an empty string.
UNKNOWN = ["tenant:users.delete", "tenant:documents.destroy", "provider:everything", "tenant:*", "*",
           "TENANT:home.view", "tenant:home.view ", "", "account:", "admin"]


def test_the_table_has_exactly_the_expected_actions_and_roles():
    assert set(TABLE) == set(EXPECTED)
    assert {r.value for r in Role} == set(ROLES)


@pytest.mark.parametrize(("action", "role", "may"), CASES, ids=[f"{a}-{r}" for a, r, _m in CASES])
def test_each_role_may_exactly_what_the_rules_say(action, role, may):
    assert allowed(role, action) is may
    assert allowed(Role(role), action) is may


@pytest.mark.parametrize("action", UNKNOWN)
def test_an_unknown_action_is_refused_to_every_role(action):
    assert [r for r in ROLES if allowed(r, action)] == []


@pytest.mark.parametrize("action", [*EXPECTED, *UNKNOWN])
def test_without_a_role_everything_is_refused(action):
    assert allowed(None, action) is False
