"""Billing settings as the services use them: the Stripe gateway, tax, links, issuer."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from appliance.errors import ApplianceError, Conflict

if TYPE_CHECKING:
    from appliance.config import Settings
    from billing.stripe_adapter import Gateway


@dataclass(frozen=True)
class Issuer:
    name: str = "mockmock"
    address: str = ""
    registration_number: str = ""


@dataclass
class Billing:
    gateway: Gateway | None = None
    webhook_secret: str = ""
    publishable_key: str = ""
    js_url: str = "https://js.stripe.com/v3/"
    link_base: str = "http://127.0.0.1:8383"
    tax_rate: Decimal = Decimal(10)
    batch: int = 500
    issuer: Issuer = field(default_factory=Issuer)

    @property
    def mode(self) -> str | None:
        return self.gateway.mode if self.gateway is not None else None

    def require_gateway(self) -> Gateway:
        if self.gateway is None:
            raise Conflict(
                "Stripe is not configured: set MOCKMOCK_STRIPE_API_KEY (and "
                "MOCKMOCK_STRIPE_API_BASE for localstripe)"
            )
        return self.gateway

    @classmethod
    def from_settings(cls, settings: Settings) -> Billing:
        gateway = None
        if settings.stripe_api_key:
            from billing.stripe_adapter import Gateway

            try:
                gateway = Gateway(settings.stripe_api_key, settings.stripe_api_base)
            except ValueError as e:
                raise ApplianceError(f"stripe_api_key: {e}") from None
        try:
            tax = Decimal(settings.billing_tax_rate)
        except InvalidOperation:
            raise ApplianceError(
                f"billing_tax_rate: {settings.billing_tax_rate!r} is not a number"
            ) from None
        if not tax.is_finite() or tax < 0 or tax > 100:
            raise ApplianceError("billing_tax_rate: must be between 0 and 100")
        reg = settings.issuer_registration_number
        if reg and not (reg[:1] == "T" and len(reg) == 14 and reg[1:].isdigit()):
            raise ApplianceError(
                "issuer_registration_number: a qualified-invoice number is T and 13 digits"
            )
        return cls(
            gateway=gateway,
            webhook_secret=settings.stripe_webhook_secret,
            publishable_key=settings.stripe_publishable_key,
            js_url=settings.stripe_js_url,
            link_base=settings.link_base,
            tax_rate=tax,
            batch=max(1, settings.billing_close_batch),
            issuer=Issuer(
                settings.issuer_name, settings.issuer_address, settings.issuer_registration_number
            ),
        )
