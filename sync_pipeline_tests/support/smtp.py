"""A real SMTP server for tests (aiosmtpd on 127.0.0.1), keeping every message it accepted, and a port nobody serves."""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
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
    """A port on 127.0.0.1 that nothing listens on (until a test starts a server there): `processes.free_port`."""
    from sync_pipeline_tests.support.processes import free_port as outside_ephemeral_range

    return outside_ephemeral_range()


def smtp_settings(port: int) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=port, security=SmtpSecurity.NONE, mail_from=MAIL_FROM, timeout_s=5)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, for a TLS test server (trusted by pointing SSL_CERT_FILE at it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def server_tls_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


@contextlib.contextmanager
def smtp_server(
    port: int,
    inbox: Inbox | None = None,
    *,
    starttls: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
) -> Iterator[Inbox]:
    """Serve SMTP on 127.0.0.1:`port` for the block; `starttls` requires STARTTLS, `implicit_tls` is TLS from the
    first byte (what SYNC_SMTP_SECURITY=ssl expects)."""
    inbox = inbox or Inbox()
    tls: dict[str, Any] = {}
    if starttls is not None:
        tls = {"tls_context": starttls, "require_starttls": True}
    if implicit_tls is not None:
        tls = {"ssl_context": implicit_tls}
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **tls)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
