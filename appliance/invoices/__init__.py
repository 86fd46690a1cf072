"""Invoices: month close, approval, Stripe charging, the invoice document and card page."""
