"""The API contract, checked by schemathesis against the OpenAPI document the app serves.

A bounded run with a fixed seed for each of three tokens of tenant A (a client admin's write token, a client
approver's read-only token, a provider staff member's write token): schemathesis's examples phase (the request
bodies' examples, missing parameters filled in), its coverage and fuzzing phases (``MAX_EXAMPLES`` cases an
operation), then its stateful phase, which follows the document's links from a thing created or listed to
reading it and acting on it. Every response must be no 5xx, have a documented status code and content type,
conform to its schema, and hold nothing of tenant B: B's data carries a marker string, and B's slug, name,
people's addresses and the ids of its objects are searched for in every answer (``NoDataOfAnotherTenant``).
The path parameters draw from both tenants' real ids (one draw in four is B's; one slug in six is B's), so
the run also knocks on B's doors with A's tokens.

The document declares a ``default`` response (a problem document) on every operation, which would let any
status pass; the run reads a copy without it, so every status an operation answers must be listed on it.

schemathesis's engine speaks HTTP (its in-process WSGI transport cannot carry the engine's request options),
so the app is served on loopback by a threaded werkzeug server in this process, against the test database.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import unquote

import pytest
import requests
import schemathesis
from flask import Flask
from schemathesis.engine import events, from_schema

from portal.extensions import db
from tenants.context import Scope, bound
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.api.util import issue_token
from tests.factories import World, make_world, put_on_plan

SEED = 20261116
MAX_EXAMPLES = 3  # fuzzing cases an operation: with coverage and examples, under a minute a token on two cores
STATEFUL_EXAMPLES = 20  # sequences of linked calls the stateful phase tries
MARKER = "ZQX-BETA-CANARY"  # in tenant B's names, titles, memos and notes: never in an answer to A's tokens
DAY = date(2026, 11, 5)
NOVEMBER = date(2026, 11, 1)
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance")
ID_PARAMS = ("document_id", "request_id", "item_id", "task_id", "entry_id", "statement_id")
CALLERS = ("client", "read_only", "staff")


@schemathesis.check
class NoDataOfAnotherTenant:
    """Fails an answer whose body or headers hold any of ``planted`` (another tenant's strings and ids), and a
    success answered to a request whose address names one of them."""

    def __init__(self, planted: list[str]) -> None:
        self.planted = sorted(set(planted))

    def after_response(self, ctx: schemathesis.CheckContext, response: schemathesis.Response,
                       case: schemathesis.Case) -> None:
        asked = [s for s in self.planted if s in unquote(response.request.url or "")]
        if asked and response.status_code < 300:
            raise AssertionError(f"{response.status_code} to a request for another tenant's {', '.join(asked)}")
        text = response.content.decode("utf-8", errors="replace") + "\n" + "\n".join(
            f"{name}: {value}" for name, values in response.headers.items() for value in values)
        leaked = [s for s in self.planted if s in text]
        if leaked:
            raise AssertionError(f"Another tenant's data in the answer: {', '.join(leaked)}")


# --- the world ------------------------------------------------------------------------------------------------

@dataclass
class Contract:
    world: World
    a_ids: dict[str, uuid.UUID]
    b_ids: dict[str, uuid.UUID]
    planted: set[str] = field(default_factory=set)
    tokens: dict[str, str] = field(default_factory=dict)


def _fill(world: World, tenant_id: uuid.UUID, label: str, seed: int) -> dict[str, uuid.UUID]:
    """A document, a document request, a task, books with a posted entry, an employee with a calculated pay run
    and an issued statement in one tenant, made through the services by the provider's admin; their ids.
    ``label`` starts every name, title, memo and note."""
    from portal.billing import statements
    from portal.documents import requests as doc_requests
    from portal.documents import services
    from portal.ledger import services as ledger
    from portal.ledger.services import LineInput
    from portal.payroll import runs
    from portal.payroll.models import Attendance, Employee
    from portal.work.services import create_task
    from tests.documents import samples

    tenant = db.session.get(Tenant, tenant_id)
    admin = db.session.get(User, world["provider_admin"].id)
    ids: dict[str, uuid.UUID] = {}
    with bound(Scope(user_id=admin.id, tenant_ids=frozenset({tenant.id}), role=Role.PROVIDER_ADMIN)):
        target = services.upload_target(admin, category="invoice")
        ids["document_id"] = services.upload(admin, tenant, [samples.pdf(seed)], filename=f"{label} invoice.pdf",
                                             target=target).document.id
        req = doc_requests.create_request(admin, tenant, title=f"{label} year-end papers", note=f"{label} note",
                                          items=[doc_requests.ItemInput(f"{label} bank statement")])
        ids["request_id"], ids["item_id"] = req.id, req.items[0].id
        ids["task_id"] = create_task(admin, tenant, title=f"{label} reconciliation", service_line_key="bookkeeping",
                                     description=f"{label} task description").id
        ledger.start_books(admin, tenant, "vn_tt133")
        ids["entry_id"] = ledger.save_draft(admin, tenant, DAY, [LineInput("6422", 2_000_000, 0),
                                                                 LineInput("331", 0, 2_000_000)],
                                            memo=f"{label} office rent", post_it=True).id
        employee = Employee(tenant_id=tenant.id, code="E01", full_name=f"{label} Nguyễn Văn A",
                            contract_type="indefinite", contract_start=date(2025, 1, 1), region="I",
                            bank_name="Vietcombank", bank_account="0071000123456")
        employee.base_salary = 30_000_000
        db.session.add(employee)
        db.session.flush()
        ids["employee_id"] = employee.id
        db.session.add(Attendance(tenant_id=tenant.id, employee_id=employee.id, month=NOVEMBER, working_days=22,
                                  days_worked=22, paid_leave=0, unpaid_leave=0, overtime={}, bonuses=[],
                                  deductions=[]))
        db.session.commit()
        ids["run_id"] = runs.calculate(admin, tenant, NOVEMBER)[0].id
    put_on_plan(tenant, prices=(("documents_received", 0, 5_000),))
    outcome = statements.run_for_tenant(tenant.id, statements.last_month(tenant))
    assert outcome.state == "issued", outcome
    ids["statement_id"] = outcome.statement_id
    return ids


@pytest.fixture(scope="module")
def contract(app: Flask) -> Contract:
    """Tenants A and B with data in both, B's planted strings, and a token of each caller of A."""
    from sqlalchemy import func, select

    from tests.jobs import run_queued
    from workers.models import OutboxJob

    with app.app_context():
        before = db.session.scalar(select(func.max(OutboxJob.id))) or 0
        world = make_world()
        a_ids = _fill(world, world.a.id, "Alpha", seed=7)
        b_ids = _fill(world, world.b.id, MARKER, seed=8)
    # The jobs queued after outbox row ``before`` (what run_jobs does per test; this world is per module), so
    # that previews, intake and the statements' PDFs exist.
    with app.app_context():
        run_queued(app, after=before)
    b_people = [p for key, p in world.people.items() if key.startswith("b_")]
    planted = {MARKER, world.b.slug, world.b.name, str(world.b.id), *(str(v) for v in b_ids.values()),
               *(p.email for p in b_people), *(str(p.id) for p in b_people)}
    return Contract(world, a_ids, b_ids, planted, tokens={
        "client": issue_token(app, world["a_client_admin"], world.a, "write", name="contract client"),
        "read_only": issue_token(app, world["a_client_approver"], world.a, "read", name="contract read-only"),
        "staff": issue_token(app, world["staff"], world.a, "write", name="contract staff"),
    })


@pytest.fixture(scope="module")
def live(app: Flask) -> Iterator[str]:
    """The app on a loopback port, served by a threaded werkzeug server in this process."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


# --- the run --------------------------------------------------------------------------------------------------

def _document(live: str) -> dict:
    """The served OpenAPI document, less each operation's ``default`` response (see the module's docstring)."""
    document = requests.get(f"{live}/api/v1/openapi.json", timeout=30).json()
    for operations in document["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("default", None)
    return document


def _config(contract: Contract, token: str, live: str) -> schemathesis.Config:
    world = contract.world

    def ids(key: str) -> list[str]:  # one in four is B's
        return [str(contract.a_ids[key])] * 3 + [str(contract.b_ids[key])]

    return schemathesis.Config.from_dict({
        "seed": SEED,
        "base-url": live,
        "headers": {"Authorization": f"Bearer {token}"},
        "dictionaries": {"tenant_slug": {"values": [world.a.slug] * 5 + [world.b.slug]},
                         **{key: {"values": ids(key)} for key in ID_PARAMS}},
        "parameters": {"path.tenant_slug": {"dictionary": "tenant_slug"},
                       **{f"path.{key}": {"dictionary": key, "probability": 0.9} for key in ID_PARAMS}},
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        "phases": {"examples": {"fill-missing": True},
                   # TRACE and the like on every path: werkzeug's 405s, not the API's contract.
                   "coverage": {"unexpected-methods": []},
                   "stateful": {"generation": {"max-examples": STATEFUL_EXAMPLES}}},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS},
                   NoDataOfAnotherTenant.__name__: {"enabled": True, "planted": sorted(contract.planted)}},
        "suppress-health-check": ["all"],
        "workers": 2,  # two cores: one of the engine's threads runs while the other waits for an answer
    })


@pytest.fixture
def one_parse_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's two worker threads describe hypothesis strategies, which runs ``ast.parse``; CPython 3.11's
    AST conversion keeps its recursion depth per interpreter, so two parses at once can fail with "AST constructor
    recursion depth mismatch" (fixed in later CPythons). Parses take turns here; nothing else changes."""
    import ast

    parse, lock = ast.parse, threading.Lock()

    def parse_alone(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        with lock:
            return parse(*args, **kwargs)

    monkeypatch.setattr(ast, "parse", parse_alone)


@dataclass
class Outcome:
    failures: list[str] = field(default_factory=list)
    phases: dict[str, str] = field(default_factory=dict)  # phase -> its status
    responses: dict[str, int] = field(default_factory=dict)  # phase -> answers received
    transitions: int = 0
    knocks: int = 0  # requests whose address named tenant B's slug or one of its ids


def _run(contract: Contract, who: str, live: str) -> Outcome:
    schema = schemathesis.openapi.from_dict(_document(live), config=_config(contract, contract.tokens[who], live))
    outcome = Outcome(transitions=schema.statistic.transitions.total)
    seen: set[tuple[str, str, str]] = set()
    for event in from_schema(schema).execute():
        if isinstance(event, events.PhaseFinished):
            outcome.phases[event.phase.name.value] = event.status.value
        elif isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            outcome.responses[event.phase.value] = outcome.responses.get(event.phase.value, 0) + sum(
                1 for i in recorder.interactions.values() if i.response is not None)
            outcome.knocks += sum(1 for i in recorder.interactions.values()
                                  if any(s in unquote(i.request.uri) for s in contract.planted))
            for case_id, nodes in recorder.checks.items():
                for node in nodes:
                    if node.failure_info is None:
                        continue
                    case = recorder.cases[case_id].value
                    interaction = recorder.interactions.get(case_id)
                    status = interaction.response.status_code if interaction and interaction.response else "-"
                    key = (node.name, case.operation.label, str(status))
                    if key not in seen:
                        seen.add(key)
                        outcome.failures.append(
                            f"[{event.phase.value}] {node.name}: {case.method} {case.formatted_path} "
                            f"query={case.query} -> {status}\n    {node.failure_info.failure}".replace("\n", "\n    "))
        elif isinstance(event, events.NonFatalError | events.FatalError):
            outcome.failures.append(f"[engine] {event.info.format() if hasattr(event, 'info') else event!r}")
    return outcome


@pytest.mark.parametrize("who", CALLERS)
@pytest.mark.usefixtures("one_parse_at_a_time")
def test_the_api_keeps_its_contract_for_every_kind_of_token(contract, live, who):
    outcome = _run(contract, who, live)
    assert outcome.failures == [], f"{len(outcome.failures)} problems for the {who} token:\n" + "\n".join(
        outcome.failures)
    # The phases the contract names ran and were answered, the stateful one along the document's links.
    phases = ("examples", "coverage", "fuzzing", "stateful")
    assert {outcome.phases.get(p) for p in phases} == {"success"}, outcome.phases
    assert all(outcome.responses.get(p, 0) >= 20 for p in phases), outcome.responses
    assert outcome.transitions >= 20, outcome.transitions
    assert outcome.knocks >= 20, outcome.knocks  # and each was refused (NoDataOfAnotherTenant)


# --- the run's own parts, shown able to fail ------------------------------------------------------------------

def test_the_tenant_check_fails_another_tenants_data_in_an_answer_and_a_success_for_its_address():
    check = NoDataOfAnotherTenant(["co-beta", "0b7e6d3c-0000-4000-8000-000000000001"])

    def answer(body: bytes, headers: dict[str, list[str]], url: str = "http://127.0.0.1/api/v1/me",
               status: int = 200) -> schemathesis.Response:
        return schemathesis.Response(status_code=status, headers=headers, content=body,
                                     request=requests.Request("GET", url).prepare(), elapsed=0.01, verify=False)

    check.after_response(None, answer(b'{"tenant": "co-alpha"}', {"content-type": ["application/json"]}), None)
    with pytest.raises(AssertionError, match="co-beta"):
        check.after_response(None, answer(b'{"tenant": "co-beta"}', {}), None)
    with pytest.raises(AssertionError, match="0b7e6d3c"):
        check.after_response(None, answer(b"{}", {"location": ["/api/v1/tasks/0b7e6d3c-0000-4000-8000-000000000001"]}),
                             None)
    with pytest.raises(AssertionError, match="200 to a request for another tenant's co-beta"):
        check.after_response(None, answer(b"{}", {}, "http://127.0.0.1/api/v1/tenants/co-beta/tasks"), None)
    check.after_response(None, answer(b"{}", {}, "http://127.0.0.1/api/v1/tenants/co-beta/tasks", status=404), None)


def test_every_link_names_an_operation_of_the_document_and_only_its_parameters(client):
    document = client.get("/api/v1/openapi.json").json
    links = [(path, method, code, name, link)
             for path, operations in document["paths"].items() for method, operation in operations.items()
             if method != "parameters" for code, response in operation["responses"].items()
             for name, link in response.get("links", {}).items()]
    assert len(links) >= 20
    for path, method, code, name, link in links:
        pointer = link["operationRef"].removeprefix("#/paths/")
        target_path, _, target_method = pointer.rpartition("/")
        target_path = target_path.replace("~1", "/").replace("~0", "~")
        target = document["paths"].get(target_path, {}).get(target_method)
        assert target is not None, (path, method, code, name, link["operationRef"])
        expected = set(re.findall(r"{(\w+)}", target_path))
        assert set(link["parameters"]) == expected, (path, method, name)
        assert link["parameters"]["tenant_slug"] == "$request.path.tenant_slug", (path, method, name)


def test_every_json_request_body_has_an_example(client):
    document = client.get("/api/v1/openapi.json").json
    missing = [f"{method.upper()} {path}" for path, operations in document["paths"].items()
               for method, operation in operations.items() if method != "parameters"
               if "application/json" in operation.get("requestBody", {}).get("content", {})
               and "example" not in operation["requestBody"]["content"]["application/json"]]
    assert missing == []
