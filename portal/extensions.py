"""Extension objects, created unbound; ``create_app`` binds them with ``init_app``."""

from __future__ import annotations

import select

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def commit_keeping_loaded() -> None:
    """Commit the request's session without expiring what it has loaded.

    For a page whose read is recorded (an audited list, a cross-tenant read mark) and committed before the page
    is rendered: the rows just read, the signed-in user and the bound tenant stay as that transaction read them,
    instead of being loaded again, row by row or all at once, when the template touches them. Only after reads:
    a row the transaction wrote would keep its Python-side values (what the database filled in stays unread).
    """
    session = db.session()
    keep = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = keep


def replace_dropped_connections(engine: Engine) -> None:
    """Check each pooled connection as it is taken, without a round trip, and replace one the server dropped.

    A connection that sat idle in the pool has nothing to read unless the server spoke meanwhile: PostgreSQL (or
    a proxy in between) closing it leaves its goodbye and the end of the stream on the socket. A readable socket
    is therefore taken as dropped, and ``DisconnectionError`` makes the pool open a fresh one for this checkout
    (a rare harmless message, a settings reload's, costs one reconnect). It replaces ``pool_pre_ping``, whose
    empty statement cost a round trip on every transaction of every request and job (bench/README.md).
    """

    @event.listens_for(engine, "checkout")
    def _dropped(dbapi_connection, connection_record, connection_proxy) -> None:  # noqa: ANN001, ARG001
        if dbapi_connection.closed or dbapi_connection.broken:
            raise DisconnectionError("the connection is closed")
        if select.select([dbapi_connection.pgconn.socket], [], [], 0)[0]:
            raise DisconnectionError("the server closed the connection while it was idle")
