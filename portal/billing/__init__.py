"""Plans, usage, monthly statements and payments (bank transfer with VietQR; Stripe when configured)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    # The models map with the rest; the vault's and the work queues' meters and sections register on import.
    from portal.billing import meters, models, sections  # noqa: F401
