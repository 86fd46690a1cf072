"""Templates and groups."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody
from litestar.response import Response

from appliance import auth, models
from appliance.api import call
from appliance.groups import service


@get("/api/v1/templates")
async def list_templates(caller: auth.CallerParam) -> list[dict[str, Any]]:
    return await call(service.list_docs, models.Template, service.template_doc, caller.org_id)


@get("/api/v1/templates/{name:str}")
async def get_template(caller: auth.CallerParam, name: FromPath[str]) -> dict[str, Any]:
    return await call(lambda: service.template_doc(service.get_template(caller.org_id, name)))


@put("/api/v1/templates/{name:str}")
async def put_template(
    caller: auth.CallerParam, name: FromPath[str], data: JSONBody[dict[str, Any]]
) -> Response[Any]:
    """Create or update (validated; a changed body gets a new version)."""
    caller.require("operator")
    row, created = await call(service.put_template, caller.org_id, name, data)
    return Response(service.template_doc(row), status_code=201 if created else 200)


@get("/api/v1/groups")
async def list_groups(caller: auth.CallerParam) -> list[dict[str, Any]]:
    return await call(service.list_groups, caller.org_id)


@get("/api/v1/groups/{name:str}")
async def get_group(caller: auth.CallerParam, name: FromPath[str]) -> dict[str, Any]:
    return await call(lambda: service.group_doc(service.get_group(caller.org_id, name)))


@put("/api/v1/groups/{name:str}")
async def put_group(
    caller: auth.CallerParam, name: FromPath[str], data: JSONBody[service.GroupSpec], state: State
) -> Response[Any]:
    """Create or update; a new count on a running group scales it in place."""
    caller.require("operator")
    row, created, touched = await call(
        service.apply_group, caller.org_id, name, data, state.settings.lease_seconds
    )
    await state.bus.publish_desired(touched)
    doc = await call(service.group_doc, row)
    return Response(doc, status_code=201 if created else 200)


@post("/api/v1/groups/{name:str}/start", status_code=200)
async def start_group(
    caller: auth.CallerParam, name: FromPath[str], state: State
) -> dict[str, Any]:
    """Place the group on online agents and start a new run (409 if it does not fit)."""
    caller.require("operator")
    group, agents = await call(
        service.start_group, caller.org_id, name, state.settings.lease_seconds
    )
    await state.bus.publish_desired(agents)
    return await call(service.group_doc, group)


@post("/api/v1/groups/{name:str}/stop", status_code=200)
async def stop_group(caller: auth.CallerParam, name: FromPath[str], state: State) -> dict[str, Any]:
    caller.require("operator")
    group, agents = await call(service.stop_group, caller.org_id, name)
    await state.bus.publish_desired(agents)
    return await call(service.group_doc, group)


class ScaleRequest(msgspec.Struct, forbid_unknown_fields=True):
    count: int


@post("/api/v1/groups/{name:str}/scale", status_code=200)
async def scale_group(
    caller: auth.CallerParam, name: FromPath[str], data: JSONBody[ScaleRequest], state: State
) -> dict[str, Any]:
    """Change the device count; running ranges that stay are not restarted."""
    caller.require("operator")
    group, touched = await call(
        service.scale_group, caller.org_id, name, data.count, state.settings.lease_seconds
    )
    await state.bus.publish_desired(touched)
    return await call(service.group_doc, group)


ROUTES = [
    list_templates,
    get_template,
    put_template,
    list_groups,
    get_group,
    put_group,
    start_group,
    stop_group,
    scale_group,
]
