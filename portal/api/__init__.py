"""The JSON API under /api/v1 (bearer tokens, problem+json errors, OpenAPI).

flask-smorest builds the OpenAPI document from the marshmallow schemas. What
differs from its defaults, on purpose:

- it does not register its own ``HTTPException`` handler: ``portal.errors``
  answers every error under /api as ``application/problem+json`` (RFC 9457),
  flask-smorest's 422 validation errors included (their messages become ``errors``);
- its error responses are documented as problem documents;
- the answers any operation may give whatever it does (``GENERIC_ANSWERS``: 400 for a request
  the boundary cannot read, 503 while a dependency is down) are declared on every operation,
  so that each operation lists every status it can answer (``tests/api/test_schemathesis.py``);
- a ``Decimal(as_string=True)`` field is documented as the string it is dumped as;
- ``/api/v1/openapi.json`` is declared public to the gate, and the API
  blueprints are exempt from CSRF: they accept only ``Authorization: Bearer``,
  never the session cookie (``portal.access`` authenticates ``api*`` blueprints
  with ``portal.api.tokens.authenticate_bearer``).
"""

from __future__ import annotations

import http
from typing import Any

from apispec import BasePlugin
from flask import Flask
from flask_smorest import Api
from marshmallow import fields

from portal.api.schemas import ProblemSchema

PROBLEM_JSON = "application/problem+json"
BEARER = {"type": "http", "scheme": "bearer", "bearerFormat": "bop_<40 characters>",
          "description": "A personal access token, created on a workspace's API tokens page."}
# Answers that do not depend on the operation: ``portal.boundary`` refuses a request holding a NUL byte or an
# unpaired surrogate (in its address, a query parameter, a header or the JSON body) and webargs one whose body
# is not JSON, before any view; ``portal.errors`` answers 503 with Retry-After while a dependency is down.
GENERIC_ANSWERS = {
    400: "Unreadable",
    503: "Unavailable",
}


class GenericAnswers(BasePlugin):
    """Adds ``GENERIC_ANSWERS`` to every operation that does not document that status itself."""

    def operation_helper(self, path: str | None = None, operations: dict | None = None, **kwargs: Any) -> None:
        for operation in (operations or {}).values():
            responses = operation.setdefault("responses", {})
            declared = {str(code) for code in responses}
            for code, name in GENERIC_ANSWERS.items():
                if str(code) not in declared:
                    responses[str(code)] = name


def decimal_as_string(converter: Any, field: fields.Field, **kwargs: Any) -> dict:
    """apispec documents every Decimal as a number; one dumped ``as_string`` is a string (exact decimals)."""
    if isinstance(field, fields.Decimal) and field.as_string:
        return {"type": "string", "format": "decimal"}
    return {}


class PortalApi(Api):
    """flask-smorest's Api, leaving error responses to ``portal.errors``."""

    ERROR_SCHEMA = ProblemSchema

    def _init_spec(self, *, extra_plugins: tuple | None = None, **kwargs: Any) -> None:
        super()._init_spec(extra_plugins=(*(extra_plugins or ()), GenericAnswers()), **kwargs)
        self.ma_plugin.converter.add_attribute_function(decimal_as_string)

    def _register_error_handlers(self) -> None:
        # Deliberately nothing: smorest would register an app-wide HTTPException
        # handler answering {"code", "status"} JSON for every page, replacing ours.
        return None

    def _register_responses(self) -> None:
        # As flask-smorest does, but documenting error bodies as problem+json.
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["content"] = {PROBLEM_JSON: {"schema": self.ERROR_SCHEMA}}
            self.spec.components.response(status.name, response, lazy=True)
        self.spec.components.response(
            self.DEFAULT_ERROR_RESPONSE_NAME,
            {"description": "Default error response", "content": {PROBLEM_JSON: {"schema": self.ERROR_SCHEMA}}},
            lazy=True,
        )
        self.spec.components.response(GENERIC_ANSWERS[400], {
            "description": "The request could not be read: a NUL byte or an unpaired surrogate in its address, a "
                           "query parameter, a header or the body, or a body that is not JSON. `detail` or `errors` "
                           "says which.",
            "content": {PROBLEM_JSON: {"schema": self.ERROR_SCHEMA}}}, lazy=True)
        self.spec.components.response(GENERIC_ANSWERS[503], {
            "description": "A part of the service this request needs is briefly down; nothing is wrong with the "
                           "request. Send it again after `Retry-After` seconds.",
            "headers": {"Retry-After": {"description": "Seconds to wait before trying again.",
                                        "schema": {"type": "integer"}}},
            "content": {PROBLEM_JSON: {"schema": self.ERROR_SCHEMA}}}, lazy=True)


def _make_spec_public(app: Flask, api: PortalApi) -> None:
    from portal.access import public

    endpoint = f"{api._make_doc_blueprint_name()}.openapi_json"
    serve = app.view_functions[endpoint]  # a bound method: it cannot carry the attribute itself

    @public
    def openapi_json():  # noqa: ANN202
        return serve()

    app.view_functions[endpoint] = openapi_json


def init_app(app: Flask) -> PortalApi:
    """Register the API blueprints, the OpenAPI document and the bearer security scheme."""
    from portal.api import (  # noqa: F401 - they register their endpoints on blp
        bank,
        dataentry,
        documents,
        exports,
        filing,
        intake,
        ledger,
        ledger_reports,
        payroll,
        payroll_finalisation,
        payroll_runs,
        plans,
        quality,
        reconcile,
        statements,
        work,
    )
    from portal.api.views import blp
    from portal.extensions import csrf

    api = PortalApi(spec_kwargs={"security": [{"bearerAuth": []}]})
    api.init_app(app)
    api.spec.components.security_scheme("bearerAuth", BEARER)
    csrf.exempt(blp)
    api.register_blueprint(blp)
    _make_spec_public(app, api)
    app.extensions["portal_api"] = api
    return api
