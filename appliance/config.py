"""Appliance settings: one typed object, from defaults then the environment.

Environment variables use the ``MOCKMOCK_`` prefix (``MOCKMOCK_HTTP_PORT``,
``MOCKMOCK_DB_URL`` ...). Defaults never collide with a system Mosquitto
(1883) or PostgreSQL (5432) already running on the machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

DEFAULT_HTTP_PORT = 8383
DEFAULT_MQTT_PORT = 18830


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path("~/.local/share/mockmock").expanduser())
    """Database, admin token, embedded broker state and the local agent live here."""
    http_host: str = "127.0.0.1"
    """Address the API binds to; 127.0.0.1 unless you mean to serve a lab network."""
    http_port: int = DEFAULT_HTTP_PORT
    db_url: str = ""
    """peewee URL (sqlite:///path or postgresql://...). Empty: SQLite in data_dir."""
    mqtt_url: str = ""
    """Control bus the appliance connects to. Empty with embedded_broker: the embedded one."""
    embedded_broker: bool = True
    mqtt_host: str = "127.0.0.1"
    """Where the embedded broker listens."""
    mqtt_port: int = DEFAULT_MQTT_PORT
    mqtt_ca: str = ""
    """CA certificate (PEM file) that signed the broker's, for mqtts://. Empty: system store."""
    mqtt_cert: str = ""
    """Client certificate (PEM file) for a broker that asks for one (mutual TLS)."""
    mqtt_key: str = ""
    """Private key of mqtt_cert."""
    mqtt_shared: bool = True
    """On an external broker, read agent traffic through MQTT 5 shared subscriptions
    (replicas split it; the group's random name is kept in the database). Off: plain
    MQTT 3.1.1 subscriptions, for a single appliance on an older broker."""
    agent_mqtt_url: str = ""
    """The broker URL handed to enrolling agents (what a Pi can reach). Empty: mqtt_url."""
    mosquitto_dir: str = ""
    """Where Mosquitto reads mockmock's passwd and ACL files; set it and the appliance
    rewrites them on every enrollment (a systemd path unit then reloads Mosquitto)."""
    agent_mqtt_ca: str = ""
    """CA certificate (PEM file) handed to enrolling agents for mqtts://. Empty: mqtt_ca."""
    local_agent: bool = False
    """Run one agent inside the appliance process (``mockmock up``)."""
    lease_seconds: int = 120
    """How long an agent keeps running mocks without hearing from the appliance."""
    lease_renew_seconds: int = 30
    offline_grace_seconds: int = 30
    replica: bool = False
    """One of several ``serve`` processes on one PostgreSQL (refuses SQLite)."""
    leader_poll_seconds: int = 2
    """How often a standby tries the scheduler lock and the leader checks it still holds it."""
    """How long an agent may be offline before its device ranges move to other agents."""
    stripe_api_key: str = ""
    """sk_test_... or sk_live_...: the prefix is the Stripe mode. Empty: no charging."""
    stripe_publishable_key: str = ""
    """pk_test_... / pk_live_... for the card registration page."""
    stripe_api_base: str = "https://api.stripe.com"
    """Where the Stripe API is (localstripe in tests and the demo: http://127.0.0.1:PORT)."""
    stripe_js_url: str = "https://js.stripe.com/v3/"
    """Stripe.js for the card page (localstripe serves a stand-in at /js.stripe.com/v3/)."""
    stripe_webhook_secret: str = ""
    """whsec_... that signs POST /api/v1/stripe/webhook; empty: webhooks are refused."""
    public_url: str = ""
    """Base URL others reach the appliance at: boards (the enrollment command) and
    customers (card page, payment links). Empty: guessed from the bind address."""
    tls_cert: str = ""
    """PEM certificate (chain) for HTTPS on the API; with tls_key. Empty: plain HTTP."""
    tls_key: str = ""
    """PEM private key of tls_cert."""
    billing_tax_rate: str = "10"
    """Tax rate in percent on invoices (a decimal, e.g. 10 or 8.875)."""
    billing_close_batch: int = 500
    """Orgs per transaction in the month close."""
    smtp_url: str = ""
    """Mail server for billing mail: smtp://USER:PASS@HOST:587 (STARTTLS), smtps://...:465,
    or smtp://HOST:25?starttls=no (a lab relay). Empty: notices are kept, not sent."""
    smtp_from: str = ""
    """The From address of billing mail [default: the SMTP user if it is an address]."""
    smtp_ca: str = ""
    """CA (PEM file) of a mail server a private CA signed. Empty: the system's CAs."""
    billing_admins: str = ""
    """Comma-separated addresses told when a drafted invoice awaits approval."""
    issuer_name: str = "mockmock"
    """Issuer details printed on invoice documents."""
    issuer_address: str = ""
    issuer_registration_number: str = ""
    """E.g. a Japanese qualified-invoice registration number: T + 13 digits."""
    lab_networks: str = ""
    """Networks mock traffic may reach without a proof of control, for every org:
    ``10.0.0.0/8,192.168.0.0/16``. Link-local and cloud metadata are refused anyway."""
    allow_loopback: bool = True
    """Mock traffic may go to loopback (127.0.0.0/8, ::1): the demo's own broker."""

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'mockmock.sqlite3'}"

    @property
    def bus_url(self) -> str:
        if self.mqtt_url:
            return self.mqtt_url
        return f"mqtt://{self.mqtt_host}:{self.mqtt_port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    @property
    def url(self) -> str:
        """Where this machine's own clients (live line, TUI, `run`) reach the API."""
        host = "127.0.0.1" if self.http_host in ("0.0.0.0", "::", "") else self.http_host
        if ":" in host:
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{self.http_port}"

    @property
    def link_base(self) -> str:
        return (self.public_url or self.url).rstrip("/")

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin.token"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Defaults, then MOCKMOCK_* variables, then explicit (CLI) overrides."""
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = os.environ.get(f"MOCKMOCK_{f.name.upper()}")
            if raw is None:
                continue
            if f.type in ("int",):
                values[f.name] = int(raw)
            elif f.type in ("bool",):
                values[f.name] = raw.lower() in ("1", "true", "yes", "on")
            elif f.type in ("Path",):
                values[f.name] = Path(raw).expanduser()
            else:
                values[f.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)  # type: ignore[arg-type]
