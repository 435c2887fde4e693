"""A real SMTP server for tests (aiosmtpd on 127.0.0.1), keeping every message it accepted, and a port nobody serves."""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from sync_pipeline.adapters.mail import SmtpSecurity, SmtpSettings

MAIL_FROM = "sync-pipeline@example.com"


@dataclass(frozen=True)
class Received:
    mail_from: str
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def body(self, subtype: str) -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        assert part is not None and part.get_content_subtype() == subtype, f"no text/{subtype} part"
        return str(part.get_content())


@dataclass
class Inbox:
    """The aiosmtpd handler: accepts every message (unless told to refuse recipients) and keeps it."""

    messages: list[Received] = field(default_factory=list)
    refuse: frozenset[str] = frozenset()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(Received(envelope.mail_from, tuple(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (until a test starts a server there)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def smtp_settings(port: int) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=port, security=SmtpSecurity.NONE, mail_from=MAIL_FROM, timeout_s=5)


@contextlib.contextmanager
def smtp_server(port: int, inbox: Inbox | None = None) -> Iterator[Inbox]:
    """Serve SMTP on 127.0.0.1:`port` for the block."""
    inbox = inbox or Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
