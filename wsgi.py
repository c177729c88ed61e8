"""WSGI entry point: ``gunicorn wsgi:app``."""

import sys

from portal import create_app
from portal.config import ConfigError

try:
    app = create_app()
except ConfigError as err:  # one line naming the variable, not a traceback
    sys.exit(f"portal: {err}")
