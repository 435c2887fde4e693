"""Sending e-mail over SMTP (smtplib): the server settings from the environment, one message per call.

The server is infrastructure, so it comes from the environment (`SYNC_SMTP_*`, `SYNC_MAIL_FROM`), read by
`SmtpSettings.from_env` when a delivery runs and never at import; who receives alerts is a runtime setting
(`email_recipients` in `sync_config`).
"""

from __future__ import annotations

import enum
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

SMTP_TIMEOUT_SECONDS = 20.0  # connect and each command; a hung server must not hold a sensor tick for minutes


class SmtpSecurity(enum.StrEnum):
    SSL = "ssl"  # TLS from the first byte (port 465)
    STARTTLS = "starttls"  # plain connect, then upgrade before logging in (port 587)
    NONE = "none"  # no encryption: a relay on localhost or a test server only


DEFAULT_PORTS = {SmtpSecurity.SSL: 465, SmtpSecurity.STARTTLS: 587, SmtpSecurity.NONE: 25}


class MailError(Exception):
    """The message could not be handed to the SMTP server; the text says what failed and what to check."""


class MailConfigError(MailError):
    """A `SYNC_SMTP_*` variable is missing or invalid; the message names it."""


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send mail. `password` is never shown in reprs or messages."""

    host: str | None = None
    port: int = DEFAULT_PORTS[SmtpSecurity.STARTTLS]
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    mail_from: str | None = None
    timeout_s: float = SMTP_TIMEOUT_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SmtpSettings:
        """Read `SYNC_SMTP_HOST|PORT|SECURITY|USER|PASSWORD` and `SYNC_MAIL_FROM`; invalid values raise naming them."""
        text = (environ.get("SYNC_SMTP_SECURITY") or SmtpSecurity.STARTTLS.value).strip().lower()
        try:
            security = SmtpSecurity(text)
        except ValueError:
            raise MailConfigError(f"SYNC_SMTP_SECURITY must be ssl, starttls or none, got {text!r}") from None
        port_text = (environ.get("SYNC_SMTP_PORT") or "").strip()
        try:
            port = int(port_text) if port_text else DEFAULT_PORTS[security]
        except ValueError:
            raise MailConfigError(f"SYNC_SMTP_PORT must be a port number, got {port_text!r}") from None
        if not 0 < port < 65536:
            raise MailConfigError(f"SYNC_SMTP_PORT must be between 1 and 65535, got {port}")
        return cls(
            host=(environ.get("SYNC_SMTP_HOST") or "").strip() or None,
            port=port,
            security=security,
            user=(environ.get("SYNC_SMTP_USER") or "").strip() or None,
            password=environ.get("SYNC_SMTP_PASSWORD") or None,
            mail_from=(environ.get("SYNC_MAIL_FROM") or "").strip() or None,
        )

    @property
    def missing(self) -> list[str]:
        """The variables that must be set before anything can be sent."""
        required = (("SYNC_SMTP_HOST", self.host), ("SYNC_MAIL_FROM", self.mail_from))
        return [name for name, value in required if not value]

    def describe(self) -> str:
        return f"{self.host}:{self.port} ({self.security.value})"


@dataclass(frozen=True)
class OutgoingMail:
    recipients: tuple[str, ...]
    subject: str
    text: str
    html: str


def build_message(settings: SmtpSettings, mail: OutgoingMail) -> EmailMessage:
    """A multipart/alternative message: the plain-text body first, the HTML body as the preferred alternative."""
    message = EmailMessage()
    message["From"] = settings.mail_from or ""
    message["To"] = ", ".join(mail.recipients)
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False)
    domain = (settings.mail_from or "sync-pipeline.invalid").rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


def send(settings: SmtpSettings, mail: OutgoingMail) -> dict[str, str]:
    """Hand `mail` to the server; returns the recipients it refused (address -> reply) when it accepted others.

    Raises MailConfigError when the settings are incomplete, MailError when nothing was accepted (server down,
    login refused, every recipient refused); the message names the server and the SMTP reply.
    """
    if settings.missing:
        raise MailConfigError(f"e-mail is not configured: set {' and '.join(settings.missing)}")
    if not mail.recipients:
        raise MailConfigError("no recipients: `sync-pipeline settings set email_recipients=ops@example.com`")
    message = build_message(settings, mail)
    where = settings.describe()
    try:
        with _connect(settings) as smtp:
            if settings.user:
                smtp.login(settings.user, settings.password or "")
            refused = smtp.send_message(message, from_addr=settings.mail_from, to_addrs=list(mail.recipients))
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(f"SMTP server {where} refused the login of {settings.user!r}: {_reply(exc)}") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        refused_all = {addr: _reply_pair(reply) for addr, reply in exc.recipients.items()}
        raise MailError(f"SMTP server {where} refused every recipient: {refused_all}") from exc
    except smtplib.SMTPException as exc:
        raise MailError(f"SMTP server {where} did not accept the message: {type(exc).__name__}: {_reply(exc)}") from exc
    except ssl.SSLError as exc:
        raise MailError(f"TLS with SMTP server {where} failed: {exc}; check SYNC_SMTP_SECURITY") from exc
    except OSError as exc:  # refused, unreachable, timed out, unknown host
        raise MailError(f"cannot reach SMTP server {where}: {exc}") from exc
    return {addr: _reply_pair(reply) for addr, reply in refused.items()}


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    host = settings.host or ""
    if settings.security is SmtpSecurity.SSL:
        return smtplib.SMTP_SSL(host, settings.port, timeout=settings.timeout_s, context=ssl.create_default_context())
    smtp = smtplib.SMTP(host, settings.port, timeout=settings.timeout_s)
    try:
        if settings.security is SmtpSecurity.STARTTLS:
            smtp.starttls(context=ssl.create_default_context())
    except BaseException:
        smtp.close()
        raise
    return smtp


def _reply(exc: smtplib.SMTPException) -> str:
    code, text = getattr(exc, "smtp_code", None), getattr(exc, "smtp_error", None)
    if code is not None:
        return _reply_pair((code, text or b""))
    return str(exc) or "no reply text"


def _reply_pair(reply: tuple[int, bytes | str]) -> str:
    code, text = reply
    return f"{code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}".strip()
