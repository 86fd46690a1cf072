"""Per-device client certificates: every mock its own identity for mutual TLS.

With ``transport.mqtt.identity: per_device`` each device connects with a client
certificate whose CN is its device id, so a broker that maps certificates to
things (AWS IoT Core; Mosquitto with ``use_identity_as_username``) sees N
distinct devices. The board makes one key pair of its own (kept in its data
directory, 0600, never sent anywhere); an issuer signs a certificate for that
public key per device id — the appliance's test CA over its API (``mockmock ca
init``), or a CA directory given to ``mockmock-agent bench --ca DIR``.
Certificates are cached on the board and reused until a day before they expire
or until the CA changes.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agent.errors import AgentError

KEY_FILE = "device.key"
CA_FILE = "ca.crt"
CERT_DAYS = 30
RENEW_BEFORE = dt.timedelta(days=1)
MAX_DEVICES_PER_REQUEST = 5000


def _crypto() -> Any:
    try:
        from cryptography import x509
    except ImportError:
        raise AgentError(
            "identity: per_device needs the agent's identity extra "
            "(pip install 'mockmock[identity]': the cryptography package)"
        ) from None
    return x509


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# -- signing (shared by the appliance's CA and bench's --ca) ----------------------


def new_key_pem() -> bytes:
    _crypto()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key_pem: bytes) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_pem, password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def new_ca(common_name: str = "mockmock test CA", days: int = 3650) -> tuple[bytes, bytes]:
    """(key PEM, certificate PEM) of a new self-signed CA."""
    x509 = _crypto()
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key_pem = new_key_pem()
    key = serialization.load_pem_private_key(key_pem, password=None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(x509), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _ca_usage(x509: Any) -> Any:
    flags = dict.fromkeys(
        ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
         "encipher_only", "decipher_only"),
        False,
    )  # fmt: skip
    return x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, **flags)


def sign_devices(
    ca_key_pem: bytes, ca_cert_pem: bytes, public_key_pem: str, device_ids: list[str]
) -> dict[str, str]:
    """A client certificate (CN = device id) per device, all for one public key."""
    x509 = _crypto()
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    ca = x509.load_pem_x509_certificate(ca_cert_pem)
    try:
        public = serialization.load_pem_public_key(public_key_pem.encode())
    except ValueError:
        raise AgentError("public_key: not a PEM public key") from None
    now = dt.datetime.now(dt.UTC)
    out = {}
    for device in device_ids:
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device)]))
            .issuer_name(ca.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(ca_key, hashes.SHA256())
        )
        out[device] = cert.public_bytes(serialization.Encoding.PEM).decode()
    return out


# -- issuers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    ca_pem: str
    certs: dict[str, str]  # device id -> certificate PEM


class Issuer(Protocol):
    def issue(self, public_key_pem: str, device_ids: list[str]) -> Issued: ...


@dataclass(frozen=True)
class LocalIssuer:
    """Signs with a CA directory (``ca.key``, ``ca.crt``): bench and tests."""

    ca_dir: Path

    def issue(self, public_key_pem: str, device_ids: list[str]) -> Issued:
        try:
            key = (self.ca_dir / "ca.key").read_bytes()
            cert = (self.ca_dir / CA_FILE).read_bytes()
        except OSError as e:
            raise AgentError(f"--ca: cannot read the CA in {self.ca_dir}: {e.strerror}") from None
        return Issued(cert.decode(), sign_devices(key, cert, public_key_pem, device_ids))


@dataclass(frozen=True)
class ApplianceIssuer:
    """Asks the appliance's test CA (``POST /api/v1/agents/{id}/certificates``),
    authenticated with the agent's own bus credentials."""

    url: str
    agent_id: str
    username: str
    password: str

    def issue(self, public_key_pem: str, device_ids: list[str]) -> Issued:
        if not self.url:
            raise AgentError("identity: this agent does not know its appliance's URL")
        certs: dict[str, str] = {}
        ca = ""
        for i in range(0, len(device_ids), MAX_DEVICES_PER_REQUEST):
            body = json.dumps(
                {
                    "public_key": public_key_pem,
                    "devices": device_ids[i : i + MAX_DEVICES_PER_REQUEST],
                }
            ).encode()
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            req = urllib.request.Request(
                f"{self.url.rstrip('/')}/api/v1/agents/{self.agent_id}/certificates",
                data=body,
                headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    answer = json.loads(r.read())
            except urllib.error.HTTPError as e:
                detail = e.read().decode(errors="replace")[:300]
                raise AgentError(f"identity: the appliance refused ({e.code}): {detail}") from None
            except (urllib.error.URLError, OSError) as e:
                raise AgentError(f"identity: cannot reach the appliance: {e}") from None
            ca = answer["ca"]
            certs.update(answer["certificates"])
        return Issued(ca, certs)


# -- the board's side ------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceCert:
    cert: Path
    key: Path


class Identities:
    """The board's key pair and certificate cache, in front of an issuer."""

    def __init__(self, issuer: Issuer, cache_dir: Path) -> None:
        self.issuer = issuer
        self.dir = cache_dir

    def key_path(self) -> Path:
        path = self.dir / KEY_FILE
        if not path.exists():
            _write_private(path, new_key_pem())
        return path

    def _cached(self, path: Path, ca: Any, public: str) -> bool:
        x509 = _crypto()
        from cryptography.hazmat.primitives import serialization

        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError):
            return False
        mine = cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        fresh = cert.not_valid_after_utc - RENEW_BEFORE > dt.datetime.now(dt.UTC)
        return fresh and mine.decode() == public and (ca is None or cert.issuer == ca.subject)

    def provide(self, device_ids: list[str]) -> list[DeviceCert]:
        """A certificate and key per device, issued for those not cached yet."""
        x509 = _crypto()
        key = self.key_path()
        public = public_pem(key.read_bytes())
        certs_dir = self.dir / "certs"
        ca_path = self.dir / CA_FILE
        try:
            ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        except (OSError, ValueError):
            ca = None
        paths = {d: certs_dir / f"{_safe(d)}.pem" for d in device_ids}
        todo = [d for d, p in paths.items() if ca is None or not self._cached(p, ca, public)]
        if todo:
            issued = self.issuer.issue(public, todo)
            if ca is None or issued.ca_pem.encode() != ca_path.read_bytes():
                _write_private(ca_path, issued.ca_pem.encode())
            for d in todo:
                pem = issued.certs.get(d)
                if pem is None:
                    raise AgentError(f"identity: no certificate issued for device {d!r}")
                _write_private(paths[d], pem.encode())
        return [DeviceCert(paths[d], key) for d in device_ids]

    async def provide_async(self, device_ids: list[str]) -> list[DeviceCert]:
        return await asyncio.to_thread(self.provide, device_ids)


def _safe(device_id: str) -> str:
    """A file name for any device id."""
    if device_id.replace("-", "").replace("_", "").replace(".", "").isalnum():
        return device_id
    return base64.urlsafe_b64encode(device_id.encode()).decode().rstrip("=")


_current: Identities | None = None


def configure(identities: Identities | None) -> None:
    """Where per-device certificates come from in this process (the agent: its
    appliance; bench: ``--ca``)."""
    global _current
    _current = identities


def current() -> Identities:
    if _current is None:
        raise AgentError(
            "identity: per_device needs a certificate issuer (an enrolled agent asks its "
            "appliance; mockmock-agent bench takes --ca DIR)"
        )
    return _current


def configure_for_agent(config: Any, data_dir: Path) -> None:
    """An enrolled agent's certificates come from its appliance's test CA."""
    issuer = ApplianceIssuer(
        config.appliance_url, config.agent_id, config.username, config.password
    )
    configure(Identities(issuer, data_dir / "identity"))


# -- Azure IoT Hub: shared access signatures ---------------------------------------------


def derive_device_key(group_key_b64: str, device_id: str) -> str:
    """A device's key under a group enrollment (Azure DPS): HMAC-SHA256 of its id."""
    import hashlib
    import hmac

    digest = hmac.new(base64.b64decode(group_key_b64), device_id.encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


def sas_token(resource: str, key_b64: str, expiry: int, policy: str | None = None) -> str:
    """``SharedAccessSignature sr=...&sig=...&se=...`` for ``resource`` (e.g.
    ``myhub.azure-devices.net/devices/dev-1``) valid until ``expiry`` (epoch s)."""
    import hashlib
    import hmac
    from urllib.parse import quote

    sr = quote(resource, safe="")
    to_sign = f"{sr}\n{expiry}".encode()
    sig = base64.b64encode(hmac.new(base64.b64decode(key_b64), to_sign, hashlib.sha256).digest())
    token = f"SharedAccessSignature sr={sr}&sig={quote(sig.decode(), safe='')}&se={expiry}"
    return token + (f"&skn={policy}" if policy else "")
