"""Sending mail over SMTP (stdlib ``smtplib``), TLS by default, never silently in clear.

``MOCKMOCK_SMTP_URL``:

- ``smtp://USER:PASSWORD@HOST:587`` — STARTTLS, required (a server that does not
  offer it is refused);
- ``smtps://USER:PASSWORD@HOST:465`` — TLS from the first byte;
- ``smtp://HOST:25?starttls=no`` — plaintext, for a relay on a trusted lab network.

User and password are percent-decoded (an address as user: ``billing%40lab``).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

TIMEOUT_S = 20


class SmtpError(Exception):
    """The message was not accepted (one line: why)."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str  # starttls | tls | none
    username: str = ""
    password: str = ""
    sender: str = ""
    ca_file: str = ""

    @classmethod
    def parse(cls, url: str, *, sender: str = "", ca_file: str = "") -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"smtp_url: {parts.scheme or 'no'} scheme; use smtp:// or smtps://")
        query = parse_qs(parts.query)
        plain = query.get("starttls", ["yes"])[0].lower() in ("no", "false", "0", "off")
        if parts.scheme == "smtps":
            security, port = "tls", 465
        elif plain:
            security, port = "none", 25
        else:
            security, port = "starttls", 587
        try:
            port = parts.port or port
        except ValueError:
            raise ValueError("smtp_url: the port is not a number in 1-65535") from None
        username = unquote(parts.username or "")
        default_sender = username if "@" in username else f"mockmock@{socket.getfqdn()}"
        return cls(
            host=parts.hostname,
            port=port,
            security=security,
            username=username,
            password=unquote(parts.password or ""),
            sender=sender or default_sender,
            ca_file=ca_file,
        )

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file or None)


def message(config: SmtpConfig, to: list[str], subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = config.sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg.set_content(body)
    return msg


def send(config: SmtpConfig, msg: EmailMessage) -> None:
    """Deliver ``msg`` to the server of ``config`` (blocking; call it off the event loop)."""
    try:
        if config.security == "tls":
            server: smtplib.SMTP = smtplib.SMTP_SSL(
                config.host, config.port, timeout=TIMEOUT_S, context=config.context()
            )
        else:
            server = smtplib.SMTP(config.host, config.port, timeout=TIMEOUT_S)
        with server:
            server.ehlo()
            if config.security == "starttls":
                if not server.has_extn("starttls"):
                    raise SmtpError(
                        f"{config.host}:{config.port} offers no STARTTLS; refusing to send in "
                        "clear (add ?starttls=no for a plaintext relay)"
                    )
                server.starttls(context=config.context())
                server.ehlo()
            if config.username:
                server.login(config.username, config.password)
            server.send_message(msg)
    except SmtpError:
        raise
    except smtplib.SMTPException as e:
        raise SmtpError(f"{config.host}:{config.port}: {e}") from None
    except (OSError, ssl.SSLError) as e:
        raise SmtpError(f"cannot reach {config.host}:{config.port}: {e}") from None
