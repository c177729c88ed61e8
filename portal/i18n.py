"""Language and time zone per user: English and Vietnamese."""

from __future__ import annotations

from flask import Flask, current_app, has_request_context, request, session, url_for
from flask_babel import get_locale, get_translations, gettext, ngettext
from flask_login import current_user

from portal.extensions import babel
from tenants.zones import reader_today, reader_zone


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
    """Times are stored in UTC and shown in the reader's zone: ``tenants.zones.reader_zone``'s one rule."""
    return reader_zone().key


def language_return() -> str:
    """Where switching the language leads back to: this page, or after a posted form the page that showed it.

    A POST's own URL may answer only POST (switching the language there would end on a 405, and a
    browser sends no referrer here: the site's Referrer-Policy is no-referrer). The portal's routes
    nest, so the page of a posted form is the GET route of the same rule, or of the nearest rule up
    its path (``/t/<tenant_slug>/tasks/request`` is sent from ``/t/<tenant_slug>/tasks``), built
    with the posted URL's own values; else the start page. Rules, not paths, are walked: the path
    ``/t/x/tasks/request`` also matches the page of a task called "request".
    """
    if request.method in ("GET", "HEAD"):
        return request.full_path.rstrip("?")
    values = request.view_args or {}
    pages = {rule.rule.rstrip("/"): rule for rule in current_app.url_map.iter_rules() if "GET" in rule.methods}
    template = request.url_rule.rule.rstrip("/") if request.url_rule is not None else ""
    while template:
        page = pages.get(template)
        if page is not None and page.arguments <= values.keys():
            return url_for(page.endpoint, **{name: values[name] for name in page.arguments})
        template = template.rsplit("/", 1)[0]
    return request.script_root + "/"


class FormMessages:
    """WTForms' own messages ("This field is required.") from the portal's catalogue, in the current language.

    WTForms ships no Vietnamese catalogue, so Flask-WTF would show them in English on a
    Vietnamese page. Flask-WTF takes a request's translations from
    ``request.wtforms_translations`` before it loads WTForms' catalogue; ``init_app`` puts
    this there for every request, so every form (the portal's and any new one) is covered.
    """

    def ugettext(self, string: str) -> str:
        return get_translations().gettext(string)

    def ungettext(self, singular: str, plural: str, n: int) -> str:
        return get_translations().ngettext(singular, plural, n)


def _wtforms_messages() -> None:  # pragma: no cover - read by `make messages` only, never called
    """The WTForms messages the portal's forms can show, so that ``make messages`` puts them in the catalogue."""
    gettext("This field is required.")
    ngettext("Field cannot be longer than %(max)d character.", "Field cannot be longer than %(max)d characters.", 2)
    ngettext("Field must be at least %(min)d character long.", "Field must be at least %(min)d characters long.", 2)
    gettext("Field must be between %(min)d and %(max)d characters long.")
    gettext("Not a valid choice.")
    gettext("Invalid Choice: could not coerce.")
    gettext("Not a valid date value.")
    gettext("Not a valid integer value.")
    gettext("Number must be between %(min)s and %(max)s.")


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone,
                   default_translation_directories="translations")
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.globals["language_return"] = language_return
    app.jinja_env.globals["today"] = reader_today  # the reader's day: date inputs' min, "overdue"
    messages = FormMessages()

    @app.before_request
    def _form_messages() -> None:
        request.wtforms_translations = messages
