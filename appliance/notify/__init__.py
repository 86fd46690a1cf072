"""Billing mail: what Stripe does not send (pay links, failed payments, drafts to approve)."""
