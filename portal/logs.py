"""The portal's own log lines: on the process's stderr, wherever it runs.

Nothing configured the ``portal``, ``tenants`` and ``workers`` loggers, so an unhandled error's
reference reached the user and its traceback reached no log: alembic's ``fileConfig`` (run by
``portal dev`` and the test run before serving) even switches every existing logger off. Here
each of them gets one stderr handler, unless one was configured for it already (a deployment's
own logging config), and the level of ``LOG_LEVEL``. The same lines then come out of
``portal dev``, gunicorn (whose error log is stderr too) and the rq worker.
"""

from __future__ import annotations

import logging
import re
import sys

from flask import Flask

LOGGERS = ("portal", "tenants", "workers")
FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"

# Invite and password-reset links carry their secret in the path: never write it to a log.
_SECRET_PATH = re.compile(r"^(/auth/(?:invite|reset)/)[^/?\s]+")


def redact(path: str) -> str:
    """``path`` with the token of an invite or reset link replaced by [redacted]."""
    return _SECRET_PATH.sub(r"\1[redacted]", path)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (gunicorn and test runners replace it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # noqa: ANN201 - a text stream
        return sys.stderr


def init_app(app: Flask) -> None:
    """Give our loggers a stderr handler (once per process) and the configured level.

    Our handler is the only output of these loggers (no propagation): wherever the root
    logger has a handler too (alembic's, a gunicorn ``logconfig_dict``) every line would
    otherwise be written twice. Calling it again switches back on loggers that a
    ``logging.config.fileConfig`` switched off since.
    """
    level = app.config["LOG_LEVEL"]
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if not logger.handlers:
            handler = StderrHandler()
            handler.setFormatter(logging.Formatter(FORMAT))
            logger.addHandler(handler)
            logger.propagate = False
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and name.split(".", 1)[0] in LOGGERS:
            logger.disabled = False
