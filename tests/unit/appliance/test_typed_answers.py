"""Every JSON route names the Struct it answers with (issue 13): no ``dict``, ``Any`` or
missing return annotation, so the OpenAPI document and the clients see real shapes."""

from __future__ import annotations

import inspect
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
from litestar import Litestar, Response
from litestar.enums import MediaType
from litestar.routes import HTTPRoute

from appliance.app import create_app
from appliance.config import Settings

"""Untyped when this test was written; the billing and fleet branches type them."""


def untyped(annotation: Any) -> bool:
    """``dict``, ``Any`` or nothing, also inside ``list[...]``, ``X | None``, ``Response[...]``."""
    if annotation is inspect.Signature.empty or annotation is Any or annotation is dict:
        return True
    origin = get_origin(annotation)
    if origin is dict:
        return True
    if origin in (list, Union, types.UnionType) or (
        isinstance(origin, type) and issubclass(origin, Response)
    ):
        return any(untyped(a) for a in get_args(annotation) if a is not type(None))
    return False


def json_handlers(app: Litestar) -> dict[str, Any]:
    """``module.name`` → the return annotation of each handler of the appliance that answers
    JSON (its own media type, or a ``Response[...]`` of anything but text)."""
    found = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for method, (handler, _) in route.route_handler_map.items():
            name = f"{handler.fn.__module__}.{handler.handler_name}"
            annotation = handler.parsed_fn_signature.return_type.annotation
            if method == "OPTIONS" or not name.startswith("appliance."):
                continue
            origin = get_origin(annotation)
            wrapped = isinstance(origin, type) and issubclass(origin, Response)
            if handler.media_type == MediaType.JSON or (
                wrapped and get_args(annotation)[0] not in (str, bytes)
            ):
                found[name] = annotation
    return found


@pytest.fixture(scope="module")
def handlers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # Wiring only: nothing connects until the lifespan runs, which this never starts.
    data = tmp_path_factory.mktemp("data")
    settings = Settings(data_dir=Path(data), db_url=f"sqlite:///{data}/a.db", http_port=1)
    return json_handlers(create_app(settings))


def test_the_walk_sees_the_json_handlers_and_judges_their_annotations(handlers) -> None:
    assert "appliance.accounts.routes.whoami" in handlers
    assert "appliance.observability.routes.ready" in handlers  # Response[Health]
    assert "appliance.observability.routes.get_metrics" not in handlers  # text
    assert "appliance.install.routes.wheel_file" not in handlers  # a file
    assert untyped(dict[str, Any]) and untyped(list[dict[str, Any]]) and untyped(Any)
    assert untyped(Response[Any]) and untyped(inspect.Signature.empty)
    assert not untyped(handlers["appliance.accounts.routes.list_users"])


def test_every_json_handler_names_its_answer_type(handlers) -> None:
    found = sorted(name for name, annotation in handlers.items() if untyped(annotation))
    assert found == [], "untyped JSON handlers:\n  " + "\n  ".join(found)
