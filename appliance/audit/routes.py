"""GET /api/v1/audit: the org's audit log, newest first, filterable, paged."""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.params import FromQuery, Parameter

from appliance import auth
from appliance.api import OptionalId, call
from appliance.audit import service
from appliance.contract.audit import AuditPage, AuditVerdict
from appliance.schedule import clock


@get("/api/v1/audit", opt={"role": "admin"})
async def get_audit(
    caller: auth.CallerParam,
    action: FromQuery[str | None] = None,
    actor: FromQuery[str | None] = None,
    target: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    before_id: OptionalId = None,
    limit: Annotated[int, Parameter(ge=1, le=service.MAX_PAGE)] = 100,
    all_orgs: FromQuery[bool] = False,
) -> AuditPage:
    """Entries newest first; page with ``before_id`` = the answer's ``next_before_id``.

    ``action`` and ``target`` match prefixes (``action=flat.`` for every flat-window
    event). ``all_orgs=true`` shows every org's entries to an appliance superuser.
    """
    if all_orgs:
        caller.require_superuser()
    return await call(
        service.query,
        None if all_orgs else caller.org_id,
        action=action,
        actor=actor,
        target=target,
        since=clock.parse(since, "since"),
        until=clock.parse(until, "until"),
        before_id=before_id,
        limit=limit,
    )


@get("/api/v1/audit/verify", opt={"role": "admin"})
async def verify_audit(caller: auth.CallerParam) -> AuditVerdict:
    """Walk the whole hash chain (as `mockmock audit verify` does); name the first bad row."""
    return (await call(service.verify)).out()


ROUTES = [get_audit, verify_audit]
