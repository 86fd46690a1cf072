"""The control bus's TLS on the board: ``mqtts://`` is always verified, never plaintext.

The CA comes with enrollment (the appliance hands over the one that signed its
broker) and is kept in agent.json; without one, the system's trust store is used.
"""

from __future__ import annotations

import ssl

from agent.errors import AgentError


def control_context(ca_pem: str = "") -> ssl.SSLContext:
    """A verifying client context trusting ``ca_pem`` (PEM text) or the system's CAs."""
    try:
        ctx = ssl.create_default_context(cadata=ca_pem or None)
    except (ssl.SSLError, ValueError) as e:
        raise AgentError(f"mqtt_ca: not a PEM CA certificate ({e})") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def https_context(ca_file: str = "") -> ssl.SSLContext:
    """For enrolling with an https:// appliance whose certificate a private CA signed."""
    try:
        return ssl.create_default_context(cafile=ca_file or None)
    except (OSError, ssl.SSLError) as e:
        raise AgentError(f"--ca: cannot use {ca_file} as a CA certificate ({e})") from None
