"""Reading an incoming message: its key, sender, subject, note, attachments and sender-check verdict.

No Flask, no database: the receiver, the quarantine's release and the tests use it alike. Parsed with
``email.policy.default`` (headers decoded, RFC 2047 names, a tolerant parser that records defects
instead of raising).

Sender checks. The receiver does not verify SPF, DKIM or DMARC itself: the mail server in front of it
(Postfix with OpenDKIM/OpenDMARC, rspamd, or the mailbox provider for IMAP) does, and writes its
verdicts into ``Authentication-Results`` (RFC 8601) and ``Received-SPF`` (RFC 7208). A message is held
when any of them says ``spf=fail`` or ``spf=softfail`` (softfail is "probably not authorised": for a
message that would otherwise go straight into the books we would rather ask the client admin),
``dkim=fail`` or ``dmarc=fail``; ``none``, ``neutral``, ``temperror`` and ``permerror`` hold nothing.
Only failures count, never passes: a forged header can therefore only make us stricter, and a
message with no such headers is judged on its sender alone.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

NOTE_MAX = 20_000  # characters of the body kept as the note
# The most severe first: what the quarantine shows when several checks failed.
FAILURES = ("dmarc_fail", "dkim_fail", "spf_fail")
_FAILING = {"spf": {"fail", "softfail"}, "dkim": {"fail"}, "dmarc": {"fail"}}
_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"^\s*([a-z0-9_-]+)(?:/\d+)?\s*=\s*([a-z]+)", re.IGNORECASE)
_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)
_BLANK_LINES = re.compile(r"\n\s*\n(\s*\n)+")


@dataclass(frozen=True)
class Attachment:
    """A file in a message; ``payload`` None when it is not a file we can take (an e-mail inside the e-mail)."""

    name: str
    payload: bytes | None
    content_type: str

    @property
    def size(self) -> int:
        return len(self.payload or b"")


@dataclass(frozen=True)
class Parsed:
    """What the intake needs of a message."""

    key: str  # SHA-256 (hex) of its Message-ID, or of the whole message when it has none
    sender: str | None  # the one From address, lower-cased; None when there is not exactly one
    subject: str
    body: str
    size: int
    failure: str | None  # dmarc_fail, dkim_fail, spf_fail, or None
    attachments: list[Attachment] = field(default_factory=list)


def parse(raw: bytes) -> Parsed:
    """Read ``raw`` (the message as received, headers and body)."""
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)  # noqa: S101 - policy.default makes EmailMessage
    message_id = str(msg.get("Message-ID") or "").strip()
    key = hashlib.sha256(b"id:" + message_id.encode() if message_id else raw).hexdigest()
    return Parsed(key=key, sender=_sender(msg), subject=_clean(str(msg.get("Subject") or ""))[:300],
                  body=_body(msg), size=len(raw), failure=auth_failure(msg), attachments=_attachments(msg))


def auth_failure(msg: EmailMessage) -> str | None:
    """The most severe failed sender check the message's headers report, or None (see the module docstring)."""
    found: set[str] = set()
    for value in msg.get_all("Authentication-Results") or []:
        text = str(value)
        for _nested in range(3):  # comments may nest
            text = _COMMENT.sub(" ", text)
        for clause in text.split(";")[1:]:  # the first part names the server that checked
            match = _RESULT.match(clause)
            if match and match[2].lower() in _FAILING.get(match[1].lower(), ()):
                found.add(f"{match[1].lower()}_fail")
    for value in msg.get_all("Received-SPF") or []:
        words = str(value).split()
        if words and words[0].lower() in _FAILING["spf"]:
            found.add("spf_fail")
    return next((failure for failure in FAILURES if failure in found), None)


def _sender(msg: EmailMessage) -> str | None:
    try:
        header = msg.get("From")
        addresses = getattr(header, "addresses", ())
    except (IndexError, ValueError, TypeError):  # a From header the parser could not make sense of
        return None
    if len(addresses) != 1 or not addresses[0].addr_spec or "@" not in addresses[0].addr_spec:
        return None
    return addresses[0].addr_spec.strip().lower()


def _clean(text: str) -> str:
    """Text PostgreSQL and the pages can hold: no NUL, no other control characters but tab and newlines."""
    return "".join(ch for ch in text if ch in "\t\n" or ch >= " " or ch == "\r").replace("\r\n", "\n")


def _body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        text = part.get_content()
    except (LookupError, ValueError, AssertionError):  # an unknown charset, a broken transfer encoding
        text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    if not isinstance(text, str):
        return ""
    if part.get_content_type() == "text/html":
        text = _BLANK_LINES.sub("\n\n", html.unescape(_TAGS.sub("\n", text)))
    return _clean(text).strip()[:NOTE_MAX]


def _attachments(msg: EmailMessage) -> list[Attachment]:
    """The message's files. A picture placed inside an HTML body (inline, with a Content-ID: a logo in a
    signature) is part of the text, not a document. A message that is nothing but one file is that file."""
    if not msg.is_multipart():
        if msg.get_content_maintype() in ("text", "multipart"):
            return []
        return [_attachment(msg)]
    files = []
    for part in msg.iter_attachments():
        if part.get_content_disposition() == "inline" and part.get("Content-ID") and not part.get_filename():
            continue
        files.append(_attachment(part))
    return files


def _attachment(part: EmailMessage) -> Attachment:
    name = _clean(part.get_filename() or "").strip() or "attachment"
    if part.is_multipart() or part.get_content_maintype() == "message":
        return Attachment(name if name != "attachment" else "message.eml", None, part.get_content_type())
    return Attachment(name, part.get_payload(decode=True) or b"", part.get_content_type())
