"""The appliance's test CA: per-device client certificates for mutual TLS.

``mockmock ca init`` makes a CA in ``DATA_DIR/ca`` (key 0600); ``mockmock ca
export`` prints its certificate, the ``cafile`` a broker needs to accept the
mocks' certificates. Agents ask for certificates over the API
(``POST /api/v1/agents/{agent_id}/certificates``) with their own bus
credentials, for their public key and only for device ids of ranges assigned
to them; the CN of each certificate is the device id (see agent/identity.py).
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from pathlib import Path
from typing import Any

import click
import msgspec
from litestar import Request, post
from litestar.datastructures import State
from litestar.params import FromPath

from agent import identity
from agent.errors import AgentError
from agent.template import device_id, parse_template
from appliance import auth, models
from appliance.api import AGENT_AUTH, call
from appliance.contract.fleet import Certificates, CertRequest
from appliance.errors import ApplianceError, Conflict, Forbidden, NotFound, Unauthorized

CA_DIR = "ca"
KEY, CERT = "ca.key", "ca.crt"
MAX_DEVICES = identity.MAX_DEVICES_PER_REQUEST
MAX_BODY = 4 * 2**20


def ca_dir(data_dir: Path) -> Path:
    return data_dir / CA_DIR


def init(data_dir: Path, *, force: bool = False) -> Path:
    d = ca_dir(data_dir)
    if (d / CERT).exists() and not force:
        raise ApplianceError(f"--data-dir: {d} already holds a CA (pass --force to replace it)")
    key, cert = identity.new_ca()
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    auth.write_secret_file(d / KEY, key.decode().strip())
    (d / CERT).write_bytes(cert)
    return d / CERT


def load(data_dir: Path) -> tuple[bytes, bytes]:
    d = ca_dir(data_dir)
    try:
        return (d / KEY).read_bytes(), (d / CERT).read_bytes()
    except OSError:
        raise Conflict("the appliance has no test CA yet: run `mockmock ca init`") from None


# -- issuing ---------------------------------------------------------------------


def _agent_devices(agent: models.Agent) -> set[str]:
    """Every device id of the ranges assigned to ``agent`` (of running groups)."""
    out: set[str] = set()
    rows = (
        models.Assignment.select(models.Assignment, models.Group, models.Template)
        .join(models.Group)
        .join(models.Template)
        .where(models.Assignment.agent == agent.id)
    )
    for a in rows:
        tpl = parse_template(a.group.template.name, json.loads(a.group.template.body))
        out.update(device_id(tpl, a.group.name, i) for i in range(a.index_start, a.index_end))
    return out


def authenticate_agent(agent_id: str, authorization: str | None) -> None:
    """401 unless the caller is agent ``agent_id`` with its own bus credentials."""
    from appliance.fleet.credentials import identify

    who = _basic(authorization)
    ident = identify(*who) if who else None
    if ident is None or ident.role != "agent" or ident.agent_id != agent_id:
        raise Unauthorized("agent credentials required (HTTP Basic, the bus account)")


def issue(
    data_dir: Path, agent_id: str, authorization: str | None, req: CertRequest
) -> Certificates:
    authenticate_agent(agent_id, authorization)
    if not 1 <= len(req.devices) <= MAX_DEVICES:
        raise ApplianceError(f"devices: give 1 to {MAX_DEVICES} device ids")
    agent = models.Agent.get_or_none(models.Agent.agent_id == agent_id)
    if agent is None:
        raise NotFound(f"agent {agent_id!r} not found")
    mine = _agent_devices(agent)
    foreign = [d for d in req.devices if d not in mine]
    if foreign:
        raise Forbidden(f"devices: {foreign[0]!r} is not in a range assigned to agent {agent_id}")
    key, cert = load(data_dir)
    try:
        certs = identity.sign_devices(key, cert, req.public_key, req.devices)
    except AgentError as e:
        raise ApplianceError(str(e)) from None
    return Certificates(ca=cert.decode(), certificates=certs)


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if user else None


@post(
    "/api/v1/agents/{agent_id:str}/certificates",
    status_code=200,
    opt={"public": True, "auth": AGENT_AUTH},
)
async def issue_certificates(
    agent_id: FromPath[str], request: Request[Any, Any, Any], state: State
) -> Certificates:
    """Client certificates (CN = device id) for an agent's devices, from the test CA.
    Authenticated with the agent's bus credentials, not an API token: who asks is
    checked before the body is read."""
    header = request.headers.get("authorization")
    await call(authenticate_agent, agent_id, header)
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApplianceError(f"body: larger than {MAX_BODY} bytes")
    try:
        data = msgspec.json.decode(raw, type=CertRequest)
    except msgspec.DecodeError as e:
        raise ApplianceError(f"body: {e}") from None
    return await call(issue, state.settings.data_dir, agent_id, header, data)


ROUTES = [issue_certificates]


# -- command line ----------------------------------------------------------------


@click.group("ca")
def ca_cli() -> None:
    """The test CA that issues per-device client certificates."""


def _data_dir(data_dir: Path | None) -> Path:
    from appliance.config import Settings

    return Settings.from_env(data_dir=data_dir).data_dir


_data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None
)


@ca_cli.command("init")
@_data_dir_option
@click.option("--force", is_flag=True, help="Replace an existing CA (issued certs stop working).")
def init_cmd(data_dir: Path | None, force: bool) -> None:
    """Create the CA in DATA_DIR/ca (its key readable by this user only)."""
    try:
        path = init(_data_dir(data_dir), force=force)
    except ApplianceError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    click.echo(f"test CA created; its certificate: {path} (mockmock ca export prints it)")


@ca_cli.command("export")
@_data_dir_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def export_cmd(data_dir: Path | None, out: Path | None) -> None:
    """Print the CA certificate (PEM): the cafile a broker verifies the mocks with."""
    try:
        _, cert = load(_data_dir(data_dir))
    except ApplianceError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    if out is None:
        click.echo(cert.decode(), nl=False)
    else:
        out.write_bytes(cert)
