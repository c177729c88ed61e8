"""Mail delivery job."""

from __future__ import annotations

import uuid

from workers.jobs import job


@job("mail.deliver")
def deliver(message_id: str) -> None:
    from portal.mail import deliver as deliver_message

    deliver_message(uuid.UUID(message_id))
