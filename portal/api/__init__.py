"""The JSON API under /api/v1 (bearer tokens, problem+json errors, OpenAPI)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    pass
