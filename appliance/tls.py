"""TLS settings turned into SSL contexts, with one clear line for a wrong file.

Used for the control bus (``mqtts://``, client side) and for HTTPS on the API
(server side, by uvicorn). ``mqtts://`` always means a verified TLS connection:
with no CA given, the system's trust store is used, never plaintext.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import urlsplit

from appliance.config import Settings
from appliance.errors import ApplianceError

BUS_SCHEMES = ("mqtt", "mqtts")


def _readable(path: str, option: str) -> None:
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as e:
        raise ApplianceError(f"{option}: cannot read {path}: {e.strerror or e}") from None


def client_context(
    ca: str = "", cert: str = "", key: str = "", *, option: str = "--mqtt"
) -> ssl.SSLContext:
    """A verifying client context: ``ca`` (else the system store), optional client cert."""
    if ca:
        _readable(ca, f"{option}-ca")
    try:
        ctx = ssl.create_default_context(cafile=ca or None)
    except ssl.SSLError as e:
        raise ApplianceError(
            f"{option}-ca: {ca} holds no PEM CA certificate ({e.reason or e})"
        ) from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if key and not cert:
        raise ApplianceError(f"{option}-key: given without {option}-cert")
    if cert:
        _readable(cert, f"{option}-cert")
        if key:
            _readable(key, f"{option}-key")
        try:
            ctx.load_cert_chain(cert, key or None)
        except ssl.SSLError as e:
            raise ApplianceError(
                f"{option}-cert: {cert} and its key do not load ({e.reason or e})"
            ) from None
    return ctx


def bus_context(settings: Settings) -> ssl.SSLContext | None:
    """The control bus's TLS context; None for ``mqtt://`` (refused when TLS files are set)."""
    scheme = urlsplit(settings.bus_url).scheme
    if scheme not in BUS_SCHEMES:
        raise ApplianceError(
            f"--mqtt-url: {scheme or 'no'} scheme; use mqtt://HOST:PORT or mqtts://HOST:PORT"
        )
    if scheme == "mqtt":
        given = [
            o
            for o, v in (
                ("--mqtt-ca", settings.mqtt_ca),
                ("--mqtt-cert", settings.mqtt_cert),
                ("--mqtt-key", settings.mqtt_key),
            )
            if v
        ]
        if given:
            raise ApplianceError(
                f"{given[0]}: given, but --mqtt-url is mqtt:// (plaintext); use mqtts://"
            )
        return None
    return client_context(settings.mqtt_ca, settings.mqtt_cert, settings.mqtt_key)


def agent_ca_pem(settings: Settings) -> str:
    """The CA certificate(s) handed to enrolling agents for an ``mqtts://`` bus ('' none)."""
    path = settings.agent_mqtt_ca or settings.mqtt_ca
    if not path:
        return ""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ApplianceError(f"--agent-mqtt-ca: cannot read {path}: {e.strerror or e}") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ApplianceError(f"--agent-mqtt-ca: {path} holds no PEM certificate")
    return text


def check_server_files(settings: Settings) -> None:
    """HTTPS on the API: both files, readable, a matching pair."""
    if bool(settings.tls_cert) != bool(settings.tls_key):
        missing = "--tls-key" if settings.tls_cert else "--tls-cert"
        raise ApplianceError(f"{missing}: HTTPS needs both --tls-cert and --tls-key")
    if not settings.tls_cert:
        return
    _readable(settings.tls_cert, "--tls-cert")
    _readable(settings.tls_key, "--tls-key")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(settings.tls_cert, settings.tls_key)
    except ssl.SSLError as e:
        raise ApplianceError(
            f"--tls-cert: {settings.tls_cert} and --tls-key do not load as a pair ({e.reason or e})"
        ) from None
