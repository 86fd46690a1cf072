"""The OpenAPI document the appliance serves, completed where Litestar leaves gaps.

Litestar documents each route's success answer and its own 400. The appliance
also answers, on every route, the errors of the app-wide guard and the services
(one JSON shape: ``{"status_code", "detail", "extra"?}``), takes some bodies as
optional and refuses unknown fields. Clients and schema-driven fuzzers
(tests/fuzz) read the document, so it says all of that:

- the error responses each operation can give (400, 401, 403, 404, 409, 413;
  502 where Stripe is called) with the error schema;
- the bearer token as the security scheme, no security on public routes, and HTTP
  Basic (the agent's bus account) on the routes agents call;
- ``required: false`` on bodies a handler takes as ``JSONBody[X | None] = None``
  (Litestar marks every body required);
- ``additionalProperties: false`` on bodies that forbid unknown fields.

The completed document is built once, on the first request for it.
"""

from __future__ import annotations

import copy
from typing import Any, get_args

import msgspec
from litestar import Litestar, Request
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.routes import HTTPRoute

from appliance.api import AGENT_AUTH, is_public

ERROR = "Error"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status_code": {"type": "integer"},
        "detail": {"type": "string", "description": "One line naming the field and the problem."},
        "extra": {"description": "Validation details, when there are several."},
    },
    "required": ["detail"],
}
ERRORS = {
    400: "Bad input: one line naming the field",
    401: "No valid token (or link token)",
    403: "The caller's role, or the target policy, does not allow it",
    404: "No such resource",
    409: "Conflicts with the current state",
    413: "Body larger than the limit",
    502: "Stripe did not answer",
}
STRIPE_PATHS = ("/api/v1/invoices", "/api/v1/billing", "/billing/")
SAFE = ("get", "head", "options")


class CompletedJson(JsonRenderPlugin):
    """``/schema/openapi.json``: Litestar's document with :func:`complete` applied."""

    def __init__(self) -> None:
        super().__init__()
        self._rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._rendered is None:
            done = complete(copy.deepcopy(openapi_schema), request.app)
            self._rendered = self.render_json(request, done)
        return self._rendered


def _handlers(app: Litestar) -> dict[tuple[str, str], HTTPRouteHandler]:
    out = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for method, (handler, _) in route.route_handler_map.items():
                out[(method.lower(), route.path_format)] = handler
    return out


def _body(handler: HTTPRouteHandler | None) -> tuple[bool, type | None]:
    """(the body may be absent, its Struct type) of a handler's ``data`` parameter."""
    if handler is None:
        return False, None
    field = handler.parsed_fn_signature.parameters.get("data")
    if field is None:
        return False, None
    types = [t for t in (field.annotation, *get_args(field.annotation)) if isinstance(t, type)]
    struct = next((t for t in types if issubclass(t, msgspec.Struct)), None)
    return field.is_optional, struct


def complete(schema: dict[str, Any], app: Litestar) -> dict[str, Any]:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas[ERROR] = ERROR_SCHEMA
    components["securitySchemes"] = {
        "BearerToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token (mm_...): DATA_DIR/admin.token or POST /api/v1/tokens",
        },
        AGENT_AUTH: {
            "type": "http",
            "scheme": "basic",
            "description": "An agent's own bus account: the username and password it enrolled with",
        },
    }
    handlers = _handlers(app)
    for path, operations in schema.get("paths", {}).items():
        for method, op in operations.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            handler = handlers.get((method, path))
            public = handler is not None and is_public(path, handler)
            optional, struct = _body(handler)
            codes = {400, 404}
            if path != "/api/v1/health":
                codes.add(401)
            if not public:
                codes.add(403)
            if method not in SAFE or path.startswith(STRIPE_PATHS):
                codes.add(409)
            if "requestBody" in op:
                codes.add(413)
                op["requestBody"]["required"] = not optional
            if path.startswith(STRIPE_PATHS):
                codes.add(502)
            error = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR}"}}}
            for code in sorted(codes):
                op["responses"].setdefault(
                    str(code), {"description": ERRORS[code], "content": error}
                )
            if handler is not None and handler.opt.get("auth") == AGENT_AUTH:
                # Public to the token guard, but the handler asks for the agent itself.
                op["security"] = [{AGENT_AUTH: []}]
            else:
                op["security"] = [] if public else [{"BearerToken": []}]
            config = getattr(struct, "__struct_config__", None)
            if struct is not None and config is not None and config.forbid_unknown_fields:
                found = schemas.get(struct.__name__)
                if isinstance(found, dict):
                    found["additionalProperties"] = False
    return schema
