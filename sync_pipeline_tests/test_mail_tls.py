"""The SMTP adapter over TLS: STARTTLS and implicit TLS (SYNC_SMTP_SECURITY=starttls|ssl) against a real aiosmtpd
server on 127.0.0.1 with a self-signed certificate, trusted through SSL_CERT_FILE as an operator's CA bundle would be;
and a certificate nobody trusts refused with a message that names TLS. Does not touch a database.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sync_pipeline.adapters.mail import MailError, OutgoingMail, SmtpSecurity, SmtpSettings, send
from sync_pipeline_tests.support.smtp import (
    MAIL_FROM,
    free_port,
    self_signed_certificate,
    server_tls_context,
    smtp_server,
)

MAIL = OutgoingMail(("ops@example.com",), "[sync_pipeline] tls", "plain body", "<p>html body</p>")


def settings(port: int, security: SmtpSecurity) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=port, security=security, mail_from=MAIL_FROM, timeout_s=10)


@pytest.mark.parametrize("security", [SmtpSecurity.STARTTLS, SmtpSecurity.SSL])
def test_mail_goes_out_over_tls(security: SmtpSecurity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed_certificate(tmp_path)
    context = server_tls_context(cert, key)
    port = free_port()
    tls = {"starttls": context} if security is SmtpSecurity.STARTTLS else {"implicit_tls": context}
    with smtp_server(port, **tls) as inbox:
        with pytest.raises(MailError, match=r"TLS with SMTP server 127\.0\.0\.1"):
            send(settings(port, security), MAIL)  # the certificate is not trusted yet
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        assert send(settings(port, security), MAIL) == {}
    [received] = inbox.messages
    assert received.recipients == ("ops@example.com",) and received.body("plain").strip() == "plain body"


def test_a_server_that_requires_starttls_refuses_plain_text(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    port = free_port()
    with (
        smtp_server(port, starttls=server_tls_context(cert, key)) as inbox,
        pytest.raises(MailError, match="did not accept the message"),
    ):
        send(settings(port, SmtpSecurity.NONE), MAIL)
    assert inbox.messages == []
