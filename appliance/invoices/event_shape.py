"""The shape a Stripe webhook event must have before any code reads it.

A correctly signed body can still be of the wrong shape (a list, ``data`` a
string, an ``amount`` that is an object); the settlement code reads fields
without guarding each, so the shape is checked once here and a wrong one is a
400 naming the field. Extra fields are allowed: Stripe adds them freely.
"""

from __future__ import annotations

from typing import Any, NoReturn

import msgspec

from agent.template import split_message
from appliance.errors import ApplianceError

Scalar = str | int | float | bool | None


class _PaymentError(msgspec.Struct):
    code: str | None = None
    decline_code: str | None = None
    message: str | None = None


class _Intent(msgspec.Struct):
    """What settlement reads of a PaymentIntent or SetupIntent (``data.object``)."""

    id: str
    status: str | None = None
    amount: int | None = None
    currency: str | None = None
    customer: str | None = None
    metadata: dict[str, Scalar] | None = None
    last_payment_error: _PaymentError | None = None
    payment_method: str | dict[str, Any] | None = None
    livemode: bool | None = None


class _Data(msgspec.Struct):
    object: dict[str, Any]


class _Event(msgspec.Struct):
    id: str
    type: str
    data: _Data
    livemode: bool = False


def check(body: bytes) -> None:
    """ApplianceError (400) unless ``body`` is an event settlement can read safely."""
    try:
        event = msgspec.json.decode(body, type=_Event)
    except msgspec.ValidationError as e:
        _refuse("", e)
    except msgspec.DecodeError as e:
        raise ApplianceError(f"body: not a Stripe event ({e})") from None
    if event.type.startswith(("payment_intent.", "setup_intent.")):
        try:
            msgspec.convert(event.data.object, _Intent)
        except msgspec.ValidationError as e:
            _refuse("data.object", e)


def _refuse(prefix: str, err: msgspec.ValidationError) -> NoReturn:
    sub, message = split_message(str(err))
    where = ".".join(p for p in (prefix, sub) if p) or "body"
    raise ApplianceError(f"{where}: {message} (not a Stripe event)") from None
