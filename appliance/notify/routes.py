"""The org's billing email, and the notices the appliance owes (sent or not)."""

from __future__ import annotations

from typing import Annotated

from litestar import get, put
from litestar.datastructures import State
from litestar.params import FromQuery, JSONBody, Parameter

from appliance import auth
from appliance.api import call
from appliance.audit.http import actor_of
from appliance.contract.notify import BillingEmail, BillingEmailOut, NoticeOut
from appliance.notify import service


@get("/api/v1/billing/email", opt={"role": "admin"})
async def get_billing_email(caller: auth.CallerParam) -> BillingEmailOut:
    """Where the org's billing mail and Stripe's receipts go."""
    return await call(service.get_contact, caller.org_id)


@put("/api/v1/billing/email", opt={"role": "admin", "audited": True})
async def set_billing_email(
    caller: auth.CallerParam, data: JSONBody[BillingEmail]
) -> BillingEmailOut:
    """Set (or, with "", remove) the org's billing email."""
    return await call(service.set_contact, caller.org_id, data.email, actor=actor_of(caller))


@get("/api/v1/notices", opt={"role": "admin"})
async def list_notices(
    caller: auth.CallerParam,
    state: State,
    all_orgs: FromQuery[bool] = False,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
) -> list[NoticeOut]:
    """Billing notices newest first, with whether (and to whom) each was sent.

    ``status`` is ``no_smtp`` while no mail server is configured
    (``MOCKMOCK_SMTP_URL``): the notice is kept, and shown here and in the audit log.
    """
    if all_orgs:
        caller.require_superuser()
    s = state.settings
    admins = service.parse_admins(s.billing_admins)
    return await call(
        service.list_notices,
        None if all_orgs else caller.org_id,
        smtp=bool(s.smtp_url),
        admins=admins,
        limit=limit,
    )


ROUTES = [get_billing_email, set_billing_email, list_notices]
