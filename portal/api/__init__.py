"""The JSON API under /api/v1 (bearer tokens, problem+json errors, OpenAPI).

flask-smorest builds the OpenAPI document from the marshmallow schemas. Three
things differ from its defaults, on purpose:

- it does not register its own ``HTTPException`` handler: ``portal.errors``
  answers every error under /api as ``application/problem+json`` (RFC 9457),
  flask-smorest's 422 validation errors included (their messages become ``errors``);
- its error responses are documented as problem documents;
- ``/api/v1/openapi.json`` is declared public to the gate, and the API
  blueprints are exempt from CSRF: they accept only ``Authorization: Bearer``,
  never the session cookie (``portal.access`` authenticates ``api*`` blueprints
  with ``portal.api.tokens.authenticate_bearer``).
"""

from __future__ import annotations

import http
from typing import Any

from flask import Flask
from flask_smorest import Api

from portal.api.schemas import ProblemSchema

PROBLEM_JSON = "application/problem+json"
BEARER = {"type": "http", "scheme": "bearer", "bearerFormat": "bop_<40 characters>",
          "description": "A personal access token, created on a workspace's API tokens page."}


class PortalApi(Api):
    """flask-smorest's Api, leaving error responses to ``portal.errors``."""

    ERROR_SCHEMA = ProblemSchema

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
