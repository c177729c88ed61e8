"""Language and time zone per user: English and Vietnamese."""

from __future__ import annotations

from flask import Flask, current_app, g, has_request_context, request, session
from flask_babel import get_locale
from flask_login import current_user

from portal.extensions import babel


def N_(message: str) -> str:  # noqa: N802 - the name pybabel extracts (make messages: -k N_)
    """Mark ``message`` for the catalogue without translating it now: it is translated where shown."""
    return message


def select_locale() -> str:
    """The signed-in user's choice, else this browser's choice, else Accept-Language."""
    languages = list(current_app.config["LANGUAGES"])
    if not has_request_context():  # CLI and jobs: the default language
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    if session.get("locale") in languages:
        return session["locale"]
    return request.accept_languages.best_match(languages) or "en"


def select_timezone() -> str:
    """Times are stored in UTC and shown in the tenant's time zone (the provider's own on its other pages)."""
    tenant = g.get("tenant") if has_request_context() else None
    return tenant.timezone if tenant is not None else current_app.config["PROVIDER_TIMEZONE"]


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone,
                   default_translation_directories="translations")
    app.jinja_env.globals["get_locale"] = get_locale
