"""The OpenAPI document, and the rule that every endpoint declares its action."""

from __future__ import annotations

import json
import re

from portal.access import PUBLIC, action_of
from tenants.policy import TABLE


def test_every_endpoint_declares_an_action_known_to_the_table(app):
    for rule in app.url_map.iter_rules():
        action = action_of(app, rule.endpoint)
        assert action is not None, f"{rule.rule} declares no action"
        assert action == PUBLIC or action in TABLE, f"{rule.rule}: unknown action {action}"


def test_api_endpoints_keep_their_declared_actions(app):
    expected = {
        "api_v1.me": "account:manage",
        "api_v1.tenants": "account:manage",
        "api_v1.list_users": "tenant:users.view",
        "api_v1.invite_user": "tenant:users.manage",
        "api_v1.resend_invitation": "tenant:users.manage",
        "api_v1.audit_events": "tenant:audit.view",
        "api_v1.list_documents": "tenant:documents.view",
        "api_v1.upload_documents": "tenant:documents.upload",
        "api_v1.get_document": "tenant:documents.view",
        "api_v1.refile_document": "tenant:documents.refile",
        "api_v1.download_document": "tenant:documents.view",
        "api_v1.list_document_requests": "tenant:requests.view",
        "api_v1.create_document_request": "tenant:requests.manage",
        "api_v1.get_document_request": "tenant:requests.view",
        "api_v1.trash_document": "tenant:documents.trash",
        "api_v1.restore_document": "tenant:documents.restore",
        "api_v1.item_not_applicable": "tenant:requests.answer",
        "api_v1.item_reopen": "tenant:requests.manage",
        "api_v1.list_service_lines": "account:manage",
        "api_v1.list_tasks": "tenant:tasks.view",
        "api_v1.create_task": "tenant:tasks.create",
        "api_v1.get_task": "tenant:tasks.view",
        "api_v1.move_task": "tenant:tasks.move",
        "api_v1.comment_task": "tenant:tasks.comment",
        "api_v1.time_month_csv": "tenant:time.view",
        "api_v1.list_exports": "tenant:export.manage",
        "api_v1.create_export": "tenant:export.manage",
        "api_v1.get_export": "tenant:export.manage",
        "api_v1.take_passphrase": "tenant:export.manage",
        "api_v1.download_export": "tenant:export.manage",
        "api_v1.list_quality_checks": "tenant:quality.check",
        "api_v1.take_quality_check": "tenant:quality.check",
        "api_v1.get_quality_check": "tenant:quality.check",
        "api_v1.record_quality_findings": "tenant:quality.check",
        "api_v1.list_quality_rates": "tenant:quality.check",
        "api_v1.set_quality_rate": "tenant:quality.manage",
        "api_v1.tenant_plan": "tenant:statements.view",
        "api_v1.list_statements": "tenant:statements.view",
        "api_v1.get_statement": "tenant:statements.view",
        "api_v1.statement_pdf": "tenant:statements.view",
        "api_v1.approve_statement": "tenant:statements.approve",
        "api_v1.dispute_statement": "tenant:statements.approve",
        "api_v1.get_intake": "tenant:intake.view",
        "api_v1.retry_intake": "tenant:intake.retry",
        "api_v1.correct_intake_fields": "tenant:intake.correct",
        "api_v1.list_ledger_accounts": "tenant:ledger.view",
        "api_v1.list_ledger_entries": "tenant:ledger.view",
        "api_v1.create_ledger_entry": "tenant:ledger.keep",
        "api_v1.post_ledger_entry": "tenant:ledger.keep",
        "api_v1.reverse_ledger_entry": "tenant:ledger.keep",
        "api_v1.carry_ledger_result": "tenant:ledger.keep",
        "api_v1.ledger_trial_balance": "tenant:ledger.view",
        "api_v1.list_bank_accounts": "tenant:ledger.view",
        "api_v1.list_unmatched_bank_transactions": "tenant:ledger.keep",
        "api_v1.accept_bank_suggestion": "tenant:ledger.keep",
        "api_v1.undo_bank_match": "tenant:ledger.keep",
        "api_v1.bank_reconciliation_report": "tenant:ledger.view",
        "api_v1.ledger_ageing": "tenant:ledger.view",
        "api_v1.ledger_profit_and_loss": "tenant:ledger.view",
        "api_v1.ledger_balance_sheet": "tenant:ledger.view",
        "api_v1.ledger_vat": "tenant:ledger.view",
        "api_v1.ledger_dashboard": "tenant:ledger.view",
        "api_v1.list_dataentry_templates": "tenant:dataentry.view",
        "api_v1.list_dataentry_records": "tenant:dataentry.view",
        "api_v1.create_dataentry_record": "tenant:dataentry.key",
        "api_v1.get_dataentry_record": "tenant:dataentry.view",
        "api_v1.filing_calendar": "tenant:filing.view",
        "api_v1.list_payroll_employees": "tenant:payroll.view",
        "api_v1.create_payroll_employee": "tenant:payroll.keep",
        "api_v1.get_payroll_employee": "tenant:payroll.view",
        "api_v1.put_payroll_attendance": "tenant:payroll.keep",
        "api_v1.list_payroll_runs": "tenant:payroll.view",
        "api_v1.get_payroll_run": "tenant:payroll.view",
        "api_v1.calculate_payroll_run": "tenant:payroll.keep",
        "api_v1.get_payroll_finalisation": "tenant:payroll.view",
        "api_v1.intake_progress": "tenant:intake.view",
        "api_v1.search_documents": "tenant:intake.view",
        "api_v1.get_bank_statements": "tenant:intake.view",
        "api_v1.list_bank_csv_mappings": "tenant:intake.map",
        "api_v1.put_bank_csv_mapping": "tenant:intake.map",
        "api_v1.get_mail_address": "tenant:mailin.view",
        "api_v1.rotate_mail_address": "tenant:mailin.manage",
        "api_v1.list_mail_senders": "tenant:mailin.manage",
        "api_v1.add_mail_sender": "tenant:mailin.manage",
        "api_v1.remove_mail_sender": "tenant:mailin.manage",
        "api_v1.list_quarantine": "tenant:mailin.quarantine",
        "api_v1.release_mail": "tenant:mailin.quarantine",
        "api_v1.drop_mail": "tenant:mailin.quarantine",
        "api-docs.openapi_json": PUBLIC,
    }
    assert {e: action_of(app, e) for e in expected} == expected
    api_endpoints = {r.endpoint for r in app.url_map.iter_rules() if r.rule.startswith("/api/")}
    assert api_endpoints == set(expected)


def test_openapi_document_is_public_and_lists_every_path(app, client):
    r = client.get("/api/v1/openapi.json")  # no token, no cookie
    assert r.status_code == 200 and r.mimetype == "application/json"
    spec = json.loads(r.data)
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] and spec["info"]["version"] == "v1"

    documented = {path: set(ops) - {"parameters"} for path, ops in spec["paths"].items()}
    served = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api_v1."):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            served.setdefault(path, set()).update(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    assert documented == served
    assert set(served) == {"/api/v1/me", "/api/v1/tenants", "/api/v1/service-lines",
                           "/api/v1/tenants/{tenant_slug}/users",
                           "/api/v1/tenants/{tenant_slug}/audit-events", "/api/v1/tenants/{tenant_slug}/documents",
                           "/api/v1/tenants/{tenant_slug}/documents/{document_id}",
                           "/api/v1/tenants/{tenant_slug}/documents/{document_id}/content",
                           "/api/v1/tenants/{tenant_slug}/document-requests",
                           "/api/v1/tenants/{tenant_slug}/document-requests/{request_id}",
                           "/api/v1/tenants/{tenant_slug}/documents/{document_id}/restore",
                           "/api/v1/tenants/{tenant_slug}/document-requests/{request_id}/items/{item_id}/not-applicable",
                           "/api/v1/tenants/{tenant_slug}/document-requests/{request_id}/items/{item_id}/reopen",
                           "/api/v1/tenants/{tenant_slug}/tasks", "/api/v1/tenants/{tenant_slug}/tasks/{task_id}",
                           "/api/v1/tenants/{tenant_slug}/tasks/{task_id}/moves",
                           "/api/v1/tenants/{tenant_slug}/exports", "/api/v1/tenants/{tenant_slug}/exports/{export_id}",
                           "/api/v1/tenants/{tenant_slug}/exports/{export_id}/passphrase",
                           "/api/v1/tenants/{tenant_slug}/exports/{export_id}/content",
                           "/api/v1/tenants/{tenant_slug}/tasks/{task_id}/comments",
                           "/api/v1/tenants/{tenant_slug}/time.csv",
                           "/api/v1/tenants/{tenant_slug}/users/{membership_id}/resend-invitation",
                           "/api/v1/tenants/{tenant_slug}/quality-checks",
                           "/api/v1/tenants/{tenant_slug}/quality-checks/take",
                           "/api/v1/tenants/{tenant_slug}/tasks/{task_id}/quality-check",
                           "/api/v1/tenants/{tenant_slug}/quality-rates",
                           "/api/v1/tenants/{tenant_slug}/quality-rates/{line_key}",
                           "/api/v1/tenants/{tenant_slug}/plan",
                           "/api/v1/tenants/{tenant_slug}/statements",
                           "/api/v1/tenants/{tenant_slug}/statements/{statement_id}",
                           "/api/v1/tenants/{tenant_slug}/statements/{statement_id}/pdf",
                           "/api/v1/tenants/{tenant_slug}/documents/{document_id}/intake",
                           "/api/v1/tenants/{tenant_slug}/documents/{document_id}/intake/retry",
                           "/api/v1/tenants/{tenant_slug}/documents/{document_id}/intake/fields",
                           "/api/v1/tenants/{tenant_slug}/books/accounts",
                           "/api/v1/tenants/{tenant_slug}/books/entries",
                           "/api/v1/tenants/{tenant_slug}/books/entries/{entry_id}/post",
                           "/api/v1/tenants/{tenant_slug}/books/entries/{entry_id}/reverse",
                           "/api/v1/tenants/{tenant_slug}/books/carry-result",
                           "/api/v1/tenants/{tenant_slug}/books/trial-balance",
                           "/api/v1/tenants/{tenant_slug}/books/bank-accounts",
                           "/api/v1/tenants/{tenant_slug}/books/bank-accounts/{link_id}/unmatched",
                           "/api/v1/tenants/{tenant_slug}/books/bank-accounts/{link_id}/report",
                           "/api/v1/tenants/{tenant_slug}/books/bank-transactions/{transaction_id}/accept",
                           "/api/v1/tenants/{tenant_slug}/books/bank-matches/{match_id}/undo",
                           "/api/v1/tenants/{tenant_slug}/books/ageing",
                           "/api/v1/tenants/{tenant_slug}/books/profit-and-loss",
                           "/api/v1/tenants/{tenant_slug}/books/balance-sheet",
                           "/api/v1/tenants/{tenant_slug}/books/vat",
                           "/api/v1/tenants/{tenant_slug}/books/dashboard",
                           "/api/v1/tenants/{tenant_slug}/data-entry/templates",
                           "/api/v1/tenants/{tenant_slug}/data-entry/templates/{template_id}/records",
                           "/api/v1/tenants/{tenant_slug}/data-entry/records/{record_id}",
                           "/api/v1/tenants/{tenant_slug}/filing-calendar",
                           "/api/v1/tenants/{tenant_slug}/payroll/employees",
                           "/api/v1/tenants/{tenant_slug}/payroll/employees/{code}",
                           "/api/v1/tenants/{tenant_slug}/payroll/attendance/{month}",
                           "/api/v1/tenants/{tenant_slug}/payroll/runs",
                           "/api/v1/tenants/{tenant_slug}/payroll/runs/{month}",
                           "/api/v1/tenants/{tenant_slug}/payroll/runs/{month}/calculate",
                           "/api/v1/tenants/{tenant_slug}/payroll/finalisation/{year}",
                           "/api/v1/tenants/{tenant_slug}/intake",
                           "/api/v1/tenants/{tenant_slug}/search",
                           "/api/v1/tenants/{tenant_slug}/documents/{document_id}/bank-statements",
                           "/api/v1/tenants/{tenant_slug}/bank-csv-mappings",
                           "/api/v1/tenants/{tenant_slug}/mail-in/address",
                           "/api/v1/tenants/{tenant_slug}/mail-in/address/rotate",
                           "/api/v1/tenants/{tenant_slug}/mail-in/senders",
                           "/api/v1/tenants/{tenant_slug}/mail-in/senders/{sender_id}",
                           "/api/v1/tenants/{tenant_slug}/mail-in/quarantine",
                           "/api/v1/tenants/{tenant_slug}/mail-in/quarantine/{mail_id}/release",
                           "/api/v1/tenants/{tenant_slug}/mail-in/quarantine/{mail_id}/drop",
                           "/api/v1/tenants/{tenant_slug}/statements/{statement_id}/approve",
                           "/api/v1/tenants/{tenant_slug}/statements/{statement_id}/dispute"}

    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        **spec["components"]["securitySchemes"]["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert spec["security"] == [{"bearerAuth": []}]
    users = spec["paths"]["/api/v1/tenants/{tenant_slug}/users"]
    assert "201" in users["post"]["responses"] and "requestBody" in users["post"]
    assert {p["name"] for p in users["get"]["parameters"] if p["in"] == "query"} == {"cursor", "limit"}
    schemas = spec["components"]["schemas"]
    assert {"Me", "Member", "MemberPage", "AuditEvent", "Problem"} <= set(schemas)
    assert set(schemas["Problem"]["properties"]) == {"type", "title", "status", "detail", "errors"}
    problem_ref = spec["components"]["responses"]["UNPROCESSABLE_CONTENT"
                                                  if "UNPROCESSABLE_CONTENT" in spec["components"]["responses"]
                                                  else "UNPROCESSABLE_ENTITY"]
    assert "application/problem+json" in problem_ref["content"]


def test_refusals_are_documented_as_problems(client):
    spec = client.get("/api/v1/openapi.json").json
    users = spec["paths"]["/api/v1/tenants/{tenant_slug}/users"]
    assert {"400", "401", "403", "404", "422"} <= set(users["get"]["responses"])
    assert {"401", "403", "404", "409", "422"} <= set(users["post"]["responses"])
    for name in ("UNAUTHORIZED", "NOT_FOUND", "CONFLICT", "DEFAULT_ERROR"):
        content = spec["components"]["responses"][name]["content"]
        assert content == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
