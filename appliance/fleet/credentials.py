"""Control-bus credentials: who connects to the MQTT bus, and the files for Mosquitto.

Agents get theirs at enrollment (``appliance.fleet.service.enroll``); the
appliance's own bus client gets one per data directory, its secret in
``DATA_DIR/bus.secret`` (0600) and only the hash in the database.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import peewee as pw

from appliance import auth, models
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
