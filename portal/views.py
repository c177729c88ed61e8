"""The front door: index, tenant picker, language switch, health and readiness probes, metrics."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, redirect, render_template, request, session, url_for
from flask_login import current_user

from portal import health
from portal import metrics as portal_metrics
from portal.access import public, requires
from portal.auth.forms import ConfirmForm
from portal.auth.services import visible_tenants
from portal.extensions import db
from tenants.reach import SWITCHER_LIMIT, search, switcher_tenants

bp = Blueprint("main", __name__)


@bp.route("/")
@public
def index():
    """Send each person where their work is."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    if current_user.provider_role:
        return redirect(url_for("provider.dashboard"))
    tenants = visible_tenants(current_user)
    if len(tenants) == 1:
        return redirect(url_for("clients.home", tenant_slug=tenants[0].slug))
    return redirect(url_for("main.tenants"))


@bp.route("/tenants")
@requires("account:manage")
def tenants():
    """The tenant switcher as a page: every workspace this person can open, searched by name or short name."""
    reach = visible_tenants(current_user)
    q = request.args.get("q", "").strip()[:100]
    shown, found = search(reach, q)
    return render_template("tenants.html", tenants=shown, found=found, q=q,
                           searchable=bool(q) or len(reach) > SWITCHER_LIMIT)


@bp.route("/language", methods=["POST"])
@public
def language():
    """Switch the interface language (stored on the account when signed in)."""
    form = ConfirmForm()
    lang = request.form.get("lang", "")
    if form.validate_on_submit() and lang in current_app.config["LANGUAGES"]:
        session["locale"] = lang
        if current_user.is_authenticated:
            current_user.locale = lang
            db.session.commit()
    target = request.form.get("next", "")
    safe = target.startswith("/") and not target.startswith("//")
    return redirect(target if safe else url_for("main.index"))


@bp.route("/healthz")
@public
def healthz():
    """Liveness: answers without touching the database (also the benchmark's bare endpoint)."""
    return {"status": "ok"}


@bp.route("/readyz")
@public
def readyz():
    """Readiness: database, Redis and storage answer, migrations at head (portal/health.py). A 503 names
    only the parts that fail."""
    failing = health.readiness(current_app._get_current_object()).failing()
    headers = {"Cache-Control": "no-store"}
    if not failing:
        return {"status": "ready"}, 200, headers
    return {"status": "unavailable", "failing": failing}, 503, headers | {"Retry-After": str(health.RETRY_AFTER)}


@bp.route("/metrics")
@public
def metrics():
    """Prometheus metrics for a scraper holding METRICS_TOKEN (portal/metrics.py); 404 when none is set."""
    return portal_metrics.scrape()


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.context_processor
    def layout_context() -> dict:
        # The tenant switcher in the header; only for signed-in pages: (the first few, whether there are more).
        def switcher() -> tuple[list, bool]:
            if not current_user.is_authenticated:
                return [], False
            return switcher_tenants(current_user)

        return {"switcher_tenants": switcher, "languages": current_app.config["LANGUAGES"],
                "confirm_form": ConfirmForm}
