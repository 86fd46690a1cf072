"""The thin Stripe adapter: the only module that imports ``stripe``.

Stripe stores cards and executes payments; billing/ computes what is owed.
Everything here is a plain call through the official SDK's ``StripeClient``
with a configurable API base (localstripe in tests and the demo), and returns
small value objects so callers never handle SDK types.

Exactly-once charging is the caller's outbox (appliance.invoices.payments); this
module contributes the idempotency key, the metadata that names the invoice and
attempt, and :meth:`Gateway.find_payment_intent` to look an attempt up after a
crash. Network retries inside the SDK are off: a retried POST is only safe where
the server honours idempotency keys, and the emulator does not.
"""

from __future__ import annotations

import hmac
import json
import time
from dataclasses import dataclass
from hashlib import sha256
from typing import Annotated, Any, Literal

import msgspec
import stripe

from billing.errors import BillingError

Mode = Literal["test", "live"]


class StripeModeError(BillingError):
    """Test-mode data met a live key, or the other way round."""


class StripeUnavailable(BillingError):
    """The call's outcome is unknown (network, 5xx): look it up before trying again."""


class StripeRejected(BillingError):
    """Stripe answered with an error that is not a card outcome (bad request, auth)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


def mode_of_key(api_key: str) -> Mode:
    """``sk_test_``/``rk_test_`` → test, ``sk_live_``/``rk_live_`` → live; else ValueError."""
    for prefix in ("sk_", "rk_", "pk_"):
        if api_key.startswith(prefix + "test_"):
            return "test"
        if api_key.startswith(prefix + "live_"):
            return "live"
    raise ValueError("a Stripe key starts with sk_test_, sk_live_, rk_test_ or rk_live_")


def idempotency_key(invoice_id: int, attempt: int, mode: str) -> str:
    """Same invoice and attempt, same key: Stripe returns the first PaymentIntent again."""
    return f"mockmock-{mode}-invoice-{invoice_id}-attempt-{attempt}"


@dataclass(frozen=True)
class Intent:
    """What the appliance keeps of a PaymentIntent."""

    id: str
    status: str
    """succeeded | processing | requires_action | requires_payment_method | canceled | ..."""
    amount: int
    currency: str
    customer: str | None
    metadata: dict[str, str]
    client_secret: str | None
    error_code: str = ""
    """decline_code, else the error code of the last payment error ("" when none)."""
    error_message: str = ""
    livemode: bool = False


@dataclass(frozen=True)
class Setup:
    id: str
    status: str
    customer: str | None
    payment_method: str | None
    client_secret: str | None


_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
_Amount = Annotated[int, msgspec.Meta(ge=0, le=2**53)]


class _Expandable(msgspec.Struct):
    """An expanded Stripe object where an id usually is (``customer``, ``payment_method``)."""

    id: _Id


class _PaymentError(msgspec.Struct):
    decline_code: str | None = None
    code: str | None = None
    message: str | None = None


class _IntentDoc(msgspec.Struct):
    """The fields of a PaymentIntent the appliance reads; others are ignored."""

    id: _Id
    status: str = ""
    amount: _Amount | None = None
    currency: str = ""
    customer: str | _Expandable | None = None
    metadata: dict[str, str] = {}
    client_secret: str | None = None
    last_payment_error: _PaymentError | None = None
    livemode: bool = False


def _ref(value: str | _Expandable | None) -> str | None:
    return value.id if isinstance(value, _Expandable) else value


def _decode(obj: Any, type_: Any, where: str) -> Any:
    """An SDK object or a webhook's JSON as ``type_``; ValueError naming the bad field."""
    data = obj if isinstance(obj, dict) else obj.to_dict()
    try:
        return msgspec.convert(data, type_)
    except msgspec.ValidationError as e:
        raise ValueError(f"{where}: {e}") from None


def _intent(obj: Any) -> Intent:
    doc: _IntentDoc = _decode(obj, _IntentDoc, "payment_intent")
    err = doc.last_payment_error or _PaymentError()
    return Intent(
        id=doc.id,
        status=doc.status,
        amount=doc.amount or 0,
        currency=doc.currency.upper(),
        customer=_ref(doc.customer),
        metadata=dict(doc.metadata),
        client_secret=doc.client_secret,
        error_code=str(err.decline_code or err.code or ""),
        error_message=str(err.message or ""),
        livemode=doc.livemode,
    )


class _SetupDoc(msgspec.Struct):
    id: _Id
    status: str = ""
    customer: str | _Expandable | None = None
    payment_method: str | _Expandable | None = None
    client_secret: str | None = None


def _setup(obj: Any) -> Setup:
    doc: _SetupDoc = _decode(obj, _SetupDoc, "setup_intent")
    return Setup(
        id=doc.id,
        status=doc.status,
        customer=_ref(doc.customer),
        payment_method=_ref(doc.payment_method),
        client_secret=doc.client_secret,
    )


@dataclass(frozen=True)
class ChargeOutcome:
    """The answer to one PaymentIntent create: an intent, or a decline without one."""

    intent: Intent | None
    decline_code: str = ""
    message: str = ""


class Gateway:
    """Stripe for one API key (hence one mode)."""

    def __init__(
        self, api_key: str, api_base: str = "https://api.stripe.com", *, timeout: int = 30
    ):
        self.mode: Mode = mode_of_key(api_key)
        self.api_base = api_base.rstrip("/")
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": self.api_base},
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=timeout),
        )

    # --- guards ------------------------------------------------------------------

    def require_mode(self, mode: str, what: str) -> None:
        """Refuse ``what`` recorded in another mode than this key's."""
        if mode != self.mode:
            raise StripeModeError(
                f"{what} is {mode}-mode data; the appliance's Stripe key is {self.mode}-mode "
                "(test and live never mix)"
            )

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except stripe.APIConnectionError as e:
            raise StripeUnavailable(f"Stripe unreachable: {e.user_message or e}") from None
        except stripe.RateLimitError as e:
            raise StripeUnavailable(f"Stripe rate limit: {e.user_message or e}") from None
        except stripe.APIError as e:
            raise StripeUnavailable(f"Stripe error: {e.user_message or e}") from None
        except stripe.CardError:
            raise
        except stripe.StripeError as e:
            raise StripeRejected(
                f"Stripe refused the request: {e.user_message or e}", e.code or ""
            ) from None

    # --- customers and cards -----------------------------------------------------

    def create_customer(self, org_id: int, name: str, key: str) -> str:
        cus = self._call(
            self.client.v1.customers.create,
            params={"name": name, "metadata": {"org_id": str(org_id), "mode": self.mode}},
            options={"idempotency_key": key},
        )
        return str(cus.id)

    def create_setup_intent(self, customer: str, org_id: int) -> Setup:
        si = self._call(
            self.client.v1.setup_intents.create,
            params={
                "customer": customer,
                "usage": "off_session",
                "payment_method_types": ["card"],
                "metadata": {"org_id": str(org_id)},
            },
        )
        return _setup(si)

    def retrieve_setup_intent(self, setup_intent_id: str) -> Setup:
        return _setup(self._call(self.client.v1.setup_intents.retrieve, setup_intent_id))

    def attach_payment_method(self, payment_method: str, customer: str) -> None:
        """Make sure the card is the customer's (Stripe does it on setup; emulators may not)."""
        pm = self._call(self.client.v1.payment_methods.retrieve, payment_method)
        if getattr(pm, "customer", None) != customer:
            self._call(
                self.client.v1.payment_methods.attach,
                payment_method,
                params={"customer": customer},
            )

    def card_summary(self, payment_method: str) -> str:
        pm = self._call(self.client.v1.payment_methods.retrieve, payment_method)
        card = pm.to_dict().get("card") or {}
        return f"{card.get('brand', 'card')} ****{card.get('last4', '????')}"

    # --- payments ------------------------------------------------------------------

    def charge(
        self,
        *,
        amount: int,
        currency: str,
        customer: str,
        payment_method: str,
        invoice_id: int,
        attempt: int,
        invoice_number: str,
        key: str,
    ) -> ChargeOutcome:
        """Create and confirm an off-session PaymentIntent for one attempt.

        A decline is an outcome, not an error; an unknown outcome raises
        :class:`StripeUnavailable` so the caller reconciles before any retry.
        """
        params = {
            "amount": amount,
            "currency": currency.lower(),
            "customer": customer,
            "payment_method": payment_method,
            "off_session": True,
            "confirm": True,
            "metadata": {
                "invoice_id": str(invoice_id),
                "attempt": str(attempt),
                "invoice_number": invoice_number,
                "mode": self.mode,
            },
        }
        try:
            pi = self._call(
                self.client.v1.payment_intents.create,
                params=params,
                options={"idempotency_key": key},
            )
        except stripe.CardError as e:
            err = e.error
            found = getattr(err, "payment_intent", None) if err is not None else None
            code = (
                (getattr(err, "decline_code", None) or e.code or "card_declined")
                if err
                else (e.code or "card_declined")
            )
            intent = _intent(found) if found is not None else None
            return ChargeOutcome(intent, str(code), e.user_message or str(e))
        return ChargeOutcome(_intent(pi))

    def retrieve_payment_intent(self, payment_intent: str) -> Intent:
        return _intent(self._call(self.client.v1.payment_intents.retrieve, payment_intent))

    def find_payment_intent(
        self, customer: str, invoice_id: int, attempt: int, amount: int, currency: str
    ) -> Intent | None:
        """The PaymentIntent of an attempt, or None when it was never made.

        Found by its metadata, and only when its amount, currency and customer are the
        attempt's too: metadata alone is anyone's to write. Real Stripe filters by
        customer; an emulator that does not gets the whole list, filtered here (test
        data only, so it stays small).
        """
        want = {"invoice_id": str(invoice_id), "attempt": str(attempt)}
        try:
            pages = self._call(
                self.client.v1.payment_intents.list, params={"customer": customer, "limit": 100}
            )
        except StripeRejected:
            pages = self._call(self.client.v1.payment_intents.list, params={"limit": 100})
        for pi in pages.auto_paging_iter():
            found = _intent(pi)
            if (
                found.customer == customer
                and (found.amount, found.currency) == (amount, currency.upper())
                and all(found.metadata.get(k) == v for k, v in want.items())
            ):
                return found
        return None

    def refund(self, payment_intent: str, amount: int | None, key: str) -> tuple[str, int]:
        params: dict[str, Any] = {"payment_intent": payment_intent}
        if amount is not None:
            params["amount"] = amount
        r = self._call(
            self.client.v1.refunds.create, params=params, options={"idempotency_key": key}
        )
        return str(r.id), int(r.amount)


class _EventData(msgspec.Struct):
    object: dict[str, Any]


class Event(msgspec.Struct, frozen=True):
    """A verified webhook event: what the appliance reads of it."""

    id: _Id
    type: Annotated[str, msgspec.Meta(max_length=255)]
    data: _EventData
    livemode: bool = False

    @property
    def object(self) -> dict[str, Any]:
        return self.data.object


def verify_event(payload: bytes, signature: str | None, secret: str) -> Event:
    """Verify a webhook's ``Stripe-Signature`` with the SDK, then read the event.

    ValueError when the signature is missing, wrong or too old ("Stripe-Signature: ..."),
    or when the signed body is not an event ("body: ..." naming the field).
    """
    try:
        stripe.WebhookSignature.verify_header(payload, signature or "", secret)
    except stripe.SignatureVerificationError as e:
        raise ValueError(
            f"Stripe-Signature: {e.user_message or e or 'signature does not match'}"
        ) from None
    except UnicodeDecodeError:
        raise ValueError("body: not UTF-8 text") from None
    try:
        return msgspec.json.decode(payload, type=Event)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise ValueError(f"body: not a Stripe event: {e}") from None


def intent_of(obj: dict[str, Any]) -> Intent:
    """A PaymentIntent document (a webhook's ``data.object``) as an :class:`Intent`.

    ValueError naming the field when it is not one.
    """
    return _intent(obj)


def setup_of(obj: dict[str, Any]) -> Setup:
    """A SetupIntent document (a webhook's ``data.object``); ValueError when it is not one."""
    return _setup(obj)


def sign_payload(payload: bytes, secret: str, at: int | None = None) -> str:
    """A ``Stripe-Signature`` header for ``payload`` (what Stripe sends; tests use it too)."""
    stamp = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def event_payload(event_id: str, type_: str, obj: dict[str, Any], livemode: bool) -> bytes:
    """A minimal Stripe event document (for tests and replays)."""
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": type_,
            "livemode": livemode,
            "created": int(time.time()),
            "data": {"object": obj},
        }
    ).encode()
