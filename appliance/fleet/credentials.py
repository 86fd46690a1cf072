"""Control-bus credentials: who connects to the MQTT bus, and the files for Mosquitto.

Agents get theirs at enrollment (``appliance.fleet.service.enroll``); the
appliance's own bus client gets one per data directory, its secret in
``DATA_DIR/bus.secret`` (0600) and only the hash in the database.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import peewee as pw

from appliance import auth, models
from appliance.config import Settings
from appliance.db import BaseModel
from appliance.fleet import acl

log = logging.getLogger(__name__)

SECRET_FILE = "bus.secret"


class BusUser(BaseModel):
    """A non-agent control-bus account (the appliance's own client, one per data dir)."""

    username = pw.CharField(unique=True)
    password_hash = pw.CharField()
    role = pw.CharField(default=acl.APPLIANCE_ROLE)
    created_at = pw.DateTimeField(default=models.utcnow)

    class Meta:
        table_name = "bususer"


MODELS: list[type[BaseModel]] = [BusUser]


def ensure_appliance_user(data_dir: Path) -> tuple[str, str]:
    """The appliance's (username, password), created on first use; kept across restarts."""
    path = data_dir / SECRET_FILE
    try:
        username, password = path.read_text().strip().split(":", 1)
    except (OSError, ValueError):
        username, password = "", ""
    if username:
        row = BusUser.get_or_none(BusUser.username == username)
        if row is not None and acl.verify_password(password, row.password_hash):
            return username, password
    # Each data directory (each replica) gets its own account, so replicas sharing a
    # database never rotate each other's secret.
    username = f"mm-appliance-{secrets.token_hex(4)}"
    password = acl.new_password()
    BusUser.create(username=username, password_hash=acl.hash_password(password))
    auth.write_secret_file(path, f"{username}:{password}")
    return username, password


def identify(username: str, password: str) -> acl.Identity | None:
    """The identity behind valid credentials, else None (unknown user, wrong password)."""
    agent = models.Agent.get_or_none(models.Agent.mqtt_username == username)
    if agent is not None:
        if acl.valid_agent_id(agent.agent_id) and acl.verify_password(
            password, agent.mqtt_password_hash
        ):
            return acl.Identity(acl.AGENT_ROLE, agent.agent_id)
        return None
    user = BusUser.get_or_none(BusUser.username == username)
    if user is not None and acl.verify_password(password, user.password_hash):
        return acl.Identity(acl.APPLIANCE_ROLE)
    return None


def mosquitto_files() -> tuple[str, str, list[str]]:
    """(password file, ACL file, warnings) for every current bus account."""
    warnings: list[str] = []
    users: list[tuple[str, str]] = []
    agents: list[tuple[str, str]] = []
    for a in models.Agent.select().order_by(models.Agent.id):
        if not acl.mosquitto_exportable(a.mqtt_password_hash):
            warnings.append(
                f"agent {a.agent_id}: enrolled with an old hash format Mosquitto cannot read; "
                "enroll it again"
            )
            continue
        users.append((a.mqtt_username, a.mqtt_password_hash))
        agents.append((a.mqtt_username, a.agent_id))
    appliance_users = []
    for u in BusUser.select().where(BusUser.role == acl.APPLIANCE_ROLE):
        users.append((u.username, u.password_hash))
        appliance_users.append(u.username)
    return (
        acl.mosquitto_password_file(users),
        acl.mosquitto_acl_file(appliance_users, agents),
        warnings,
    )


# ---- the URL a board is told -------------------------------------------------------

WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class BoardURL:
    """Where boards reach the API, and why it may not be reachable (empty: it is)."""

    url: str
    warning: str = ""


def board_url(settings: Settings, *, host_header: str = "", scheme: str = "") -> BoardURL:
    """The appliance URL to hand to a board: never 127.0.0.1 while the API serves a network.

    In order: ``MOCKMOCK_PUBLIC_URL``; the address the API is bound to; when bound
    to every interface, the host the caller used (unless that is a loopback name)
    and then this machine's name.
    """
    from appliance.install.script import safe_base_url

    scheme = scheme or settings.scheme
    if settings.public_url:
        return BoardURL(settings.public_url.rstrip("/"))
    bound = settings.http_host
    if bound not in WILDCARDS and not is_loopback(bound):
        host = f"[{bound}]" if ":" in bound else bound
        return BoardURL(f"{scheme}://{host}:{settings.http_port}")
    if bound not in WILDCARDS:
        return BoardURL(
            settings.url,
            f"the API listens on {bound} only, which boards cannot reach: serve with "
            "--http-host 0.0.0.0 (and a firewall) and set MOCKMOCK_PUBLIC_URL",
        )
    asked = urlsplit(f"//{host_header}") if host_header else None
    if asked is not None and asked.hostname and not is_loopback(asked.hostname):
        url = safe_base_url(f"{scheme}://{host_header}")
        if url:
            return BoardURL(url)
    name = socket.getfqdn()
    if name and not is_loopback(name) and safe_base_url(f"{scheme}://{name}"):
        return BoardURL(
            f"{scheme}://{name}:{settings.http_port}",
            f"guessed from this machine's name; set MOCKMOCK_PUBLIC_URL if boards reach "
            f"the appliance under another ({scheme}://HOST:{settings.http_port})",
        )
    address = _outbound_address()
    if address:
        host = f"[{address}]" if ":" in address else address
        return BoardURL(
            f"{scheme}://{host}:{settings.http_port}",
            "guessed from this machine's address; set MOCKMOCK_PUBLIC_URL to the URL "
            "boards reach the appliance at",
        )
    return BoardURL(
        settings.url, "set MOCKMOCK_PUBLIC_URL to the URL boards reach the appliance at"
    )


def _outbound_address() -> str:
    """This machine's address on its default route ('' without one).

    Connecting a UDP socket only picks a route and a source address; no packet is sent.
    """
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1 (RFC 5737): never a real host
            address = str(s.getsockname()[0])
    except OSError:
        return ""
    return "" if is_loopback(address) or address == "0.0.0.0" else address


def board_mqtt_url(settings: Settings, *, host_header: str, client_host: str) -> str:
    """The control-bus URL for an enrolling board (credentials never included).

    A broker on the appliance's loopback is on the appliance's machine: a board
    enrolling from elsewhere is told the host it reached the API at instead of
    127.0.0.1. ``MOCKMOCK_AGENT_MQTT_URL`` overrides all of it.
    """
    from appliance.fleet.service import public_mqtt_url

    url = public_mqtt_url(settings.agent_mqtt_url or settings.bus_url)
    parts = urlsplit(url)
    asked = urlsplit(f"//{host_header}").hostname if host_header else None
    if (
        not settings.agent_mqtt_url
        and is_loopback(parts.hostname or "")
        and not is_loopback(client_host)
        and asked
        and not is_loopback(asked)
    ):
        host = f"[{asked}]" if ":" in asked else asked
        return parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")).geturl()
    return url


def install_command(url: str, token: str) -> str:
    """The line to paste on a board (POSIX sh; root for the system user and the unit)."""
    return f"curl -sfL {url}/agent/install.sh | sudo sh -s -- --token {token}"


# ---- files for a production Mosquitto ---------------------------------------------

MOSQUITTO_USER = "mosquitto"
PASSWD, ACL, MOCK_ACL, CONF = "passwd", "acl", "acl-mock", "mosquitto.conf"


@dataclass(frozen=True)
class Reader:
    """The account a broker reads its files as (after dropping root)."""

    name: str
    uid: int
    gids: frozenset[int]

    @classmethod
    def lookup(cls, name: str) -> Reader | None:
        import grp
        import pwd

        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            return None
        gids = {pw.pw_gid} | {g.gr_gid for g in grp.getgrall() if name in g.gr_mem}
        return cls(name, pw.pw_uid, frozenset(gids))

    def may(self, path: Path, bit: int) -> bool:
        """Whether this account has permission ``bit`` (4 read, 1 search) on ``path``."""
        st = path.stat()
        if self.uid == 0:
            return True
        if st.st_uid == self.uid:
            return bool(st.st_mode & (bit << 6))
        if st.st_gid in self.gids:
            return bool(st.st_mode & (bit << 3))
        return bool(st.st_mode & bit)

    def blocked(self, path: Path) -> str:
        """'' when this account can read ``path``, else what stops it."""
        path = path.absolute()
        try:
            for parent in reversed(path.parents):
                if not self.may(parent, 1):
                    return f"{self.name} cannot enter {parent}"
            if not self.may(path, 4):
                return f"{self.name} cannot read {path}"
        except OSError as e:
            return f"{path}: {e.strerror or e}"
        return ""


def _write_shared(path: Path, text: str, mode: int, gid: int | None) -> str:
    """Atomically write ``path`` with ``mode`` and group ``gid``; a warning or ''.

    Written as a temporary file first and renamed, so a broker reloading at that
    moment sees the old file or the new one, and a rerun never leaves a file
    behind with the wrong owner or mode.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    warning = ""
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
        if gid is not None:
            try:
                os.fchown(fd, -1, gid)
            except PermissionError as e:
                warning = f"{path}: cannot give it to group {gid} ({e.strerror})"
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return warning


def write_mosquitto_files(
    out: Path, *, conf: str | None = None, group: str | None = MOSQUITTO_USER
) -> list[str]:
    """Write passwd and ACLs (and ``conf``) into ``out``, readable by ``group``.

    Secret-bearing files (the password hashes, the ACLs) are 0640 with the
    broker's group (``None``: the folder's own group, as the appliance keeps it
    when it rewrites them); the folder 0750. Returns warnings (one line each).
    """
    import grp

    passwd, acl_text, warnings = mosquitto_files()
    gid: int | None = None
    if group is None:
        gid = out.stat().st_gid
    else:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            warnings.append(
                f"no group {group!r} on this machine: give {out} and its files to the "
                "broker's group where it runs (chgrp), or pass --group"
            )
    out.mkdir(parents=True, exist_ok=True)
    if gid is not None and group is not None:
        try:
            os.chown(out, -1, gid)
            os.chmod(out, 0o750)
        except PermissionError as e:
            warnings.append(f"{out}: cannot give it to group {group} ({e.strerror})")
    # The password file last: a reload it triggers (the systemd path unit) sees the ACLs done.
    files = {ACL: acl_text, MOCK_ACL: acl.mosquitto_mock_acl_file(), PASSWD: passwd}
    for name, text in files.items():
        w = _write_shared(out / name, text, 0o640, gid)
        if w:
            warnings.append(w)
    if conf is not None:
        w = _write_shared(out / CONF, conf, 0o644, gid)
        if w:
            warnings.append(w)
    return warnings


def refresh_mosquitto_files(settings: Settings) -> None:
    """After an enrollment: rewrite the broker's files where the appliance keeps them.

    With ``MOCKMOCK_MOSQUITTO_DIR`` set (e.g. /etc/mosquitto/mockmock), an enrolled
    board's account reaches Mosquitto without anyone rerunning mosquitto-config;
    deploy/systemd/mockmock-mosquitto-reload.path reloads the broker on the change.
    """
    if not settings.mosquitto_dir:
        return
    try:
        warnings = write_mosquitto_files(Path(settings.mosquitto_dir), group=None)
    except OSError as e:
        # The board is enrolled either way; it connects once the files are written.
        log.error("cannot write Mosquitto's files in %s: %s", settings.mosquitto_dir, e)
        return
    for w in warnings:
        log.warning("mosquitto files: %s", w)
