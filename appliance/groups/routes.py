"""Templates and groups."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post, put
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.response import Response

from appliance import auth
from appliance.api import Name, call
from appliance.contract.groups import Group, GroupSpec, ScaleRequest, Template
from appliance.contract.templates import PreviewDraft, PreviewResult, TemplateCheck, TemplateDraft
from appliance.groups import service, template_check

# Checking or previewing a draft changes nothing: no audit entry (as for a read).
READ_ONLY_POST = {"audited": True}
# A PUT answers 201 when it created the template or group, 200 when it updated it.
CREATED_TEMPLATE = {201: ResponseSpec(Template, description="Created")}
CREATED_GROUP = {201: ResponseSpec(Group, description="Created")}


@get("/api/v1/templates")
async def list_templates(caller: auth.CallerParam) -> list[Template]:
    return await call(service.list_templates, caller.org_id)


@get("/api/v1/templates/{name:str}")
async def get_template(caller: auth.CallerParam, name: FromPath[Name]) -> Template:
    return await call(lambda: service.template_doc(service.get_template(caller.org_id, name)))


@put("/api/v1/templates/{name:str}", responses=CREATED_TEMPLATE)
async def put_template(
    caller: auth.CallerParam, name: FromPath[Name], data: JSONBody[dict[str, Any]], state: State
) -> Response[Template]:
    """Create or update (validated; a changed body gets a new version)."""
    caller.require("operator")
    row, created = await call(service.put_template, caller.org_id, name, data, state.targets)
    return Response(service.template_doc(row), status_code=201 if created else 200)


@post("/api/v1/templates/validate", status_code=200, opt=READ_ONLY_POST)
async def validate_template(data: JSONBody[TemplateDraft]) -> TemplateCheck:
    """Check a draft (YAML or JSON text) as a save would; ``error`` names the field and its
    line. Nothing is stored."""
    return await call(template_check.check, data)


@post("/api/v1/templates/preview", status_code=200, opt=READ_ONLY_POST)
async def preview_template(data: JSONBody[PreviewDraft]) -> PreviewResult:
    """The first messages of a few mocks of a draft, seeded, on a virtual clock; nothing is
    sent. An invalid draft answers ``valid: false`` with the ``error``."""
    return await template_check.preview(data)


# ``validate`` and ``preview`` are routes of their own, which the router would answer
# with 405 for GET/PUT; a template may still bear either name.
ROUTE_NAMED = ["/api/v1/templates/validate", "/api/v1/templates/preview"]


@get(ROUTE_NAMED, name="get_template_named_like_a_route")
async def get_route_named_template(
    caller: auth.CallerParam, request: Request[Any, Any, State]
) -> Template:
    name = request.url.path.rsplit("/", 1)[-1]
    return await call(lambda: service.template_doc(service.get_template(caller.org_id, name)))


@put(
    ROUTE_NAMED,
    name="put_template_named_like_a_route",
    responses=CREATED_TEMPLATE,
)
async def put_route_named_template(
    caller: auth.CallerParam, request: Request[Any, Any, State], data: JSONBody[dict[str, Any]]
) -> Response[Template]:
    caller.require("operator")
    name = request.url.path.rsplit("/", 1)[-1]
    rules = request.app.state.targets
    row, created = await call(service.put_template, caller.org_id, name, data, rules)
    return Response(service.template_doc(row), status_code=201 if created else 200)


@get("/api/v1/groups")
async def list_groups(caller: auth.CallerParam) -> list[Group]:
    return await call(service.list_groups, caller.org_id)


@get("/api/v1/groups/{name:str}")
async def get_group(caller: auth.CallerParam, name: FromPath[Name]) -> Group:
    return await call(lambda: service.group_doc(service.get_group(caller.org_id, name)))


@put("/api/v1/groups/{name:str}", responses=CREATED_GROUP)
async def put_group(
    caller: auth.CallerParam, name: FromPath[Name], data: JSONBody[GroupSpec], state: State
) -> Response[Group]:
    """Create or update; a new count on a running group scales it in place."""
    caller.require("operator")
    row, created, touched = await call(
        service.apply_group, caller.org_id, name, data, state.settings.lease_seconds
    )
    await state.bus.publish_desired(touched)
    doc = await call(service.group_doc, row)
    return Response(doc, status_code=201 if created else 200)


@post("/api/v1/groups/{name:str}/start", status_code=200)
async def start_group(caller: auth.CallerParam, name: FromPath[Name], state: State) -> Group:
    """Place the group on online agents and start a new run (409 if it does not fit)."""
    caller.require("operator")
    group, agents = await call(
        service.start_group, caller.org_id, name, state.settings.lease_seconds, state.targets
    )
    await state.bus.publish_desired(agents)
    return await call(service.group_doc, group)


@post("/api/v1/groups/{name:str}/stop", status_code=200)
async def stop_group(caller: auth.CallerParam, name: FromPath[Name], state: State) -> Group:
    caller.require("operator")
    group, agents = await call(service.stop_group, caller.org_id, name)
    await state.bus.publish_desired(agents)
    return await call(service.group_doc, group)


@post("/api/v1/groups/{name:str}/scale", status_code=200)
async def scale_group(
    caller: auth.CallerParam, name: FromPath[Name], data: JSONBody[ScaleRequest], state: State
) -> Group:
    """Change the device count; running ranges that stay are not restarted."""
    caller.require("operator")
    group, touched = await call(
        service.scale_group, caller.org_id, name, data.count, state.settings.lease_seconds
    )
    await state.bus.publish_desired(touched)
    return await call(service.group_doc, group)


ROUTES = [
    validate_template,
    preview_template,
    get_route_named_template,
    put_route_named_template,
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
