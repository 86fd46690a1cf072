"""TLS material of a template: inline PEM, never a file path.

A template's ``ca``, ``cert`` and ``key`` travel from the appliance to agents
(and the appliance runs one agent in its own process), so a path in them would
let a template read any file the appliance or a board can read. They hold PEM
text; the command line (``mockmock run``, ``mockmock-agent bench``) reads files
named relative to the scenario and inlines them when the scenario loads.

The control bus's TLS on the board (``control_context``): ``mqtts://`` is always
verified, never plaintext. Its CA comes with enrollment (the appliance hands over
the one that signed its broker) and is kept in agent.json; without one, the
system's trust store is used.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from typing import Any

from agent.errors import AgentError, ScenarioError
from agent.limits import MAX_PEM

# What each must hold ("-----BEGIN RSA PRIVATE KEY-----", "EC ..." and PKCS#8 all end so).
_NEEDS = {"ca": "-----BEGIN CERTIFICATE-----", "cert": "-----BEGIN CERTIFICATE-----"}
_KEY = "PRIVATE KEY-----"


def is_pem(value: str) -> bool:
    return "-----BEGIN " in value and "-----END " in value


def has_key(value: str) -> bool:
    return _KEY in value


def check_pem(name: str, value: str, path: str) -> None:
    """``ca``/``cert``/``key`` must be PEM text of the right kind."""
    where = f"{path}.{name}"
    if len(value) > MAX_PEM:
        raise ScenarioError(where, f"PEM longer than {MAX_PEM} characters")
    if not is_pem(value):
        raise ScenarioError(
            where,
            "must be PEM text (-----BEGIN ...), not a file path; `mockmock run` and "
            "`mockmock-agent bench` inline files named relative to the scenario",
        )
    if _NEEDS.get(name, _KEY) not in value:
        raise ScenarioError(where, f"no {'private key' if name == 'key' else 'certificate'} in it")
    if name == "ca":
        try:
            ssl.create_default_context(cadata=value)
        except (ssl.SSLError, ValueError) as e:
            raise ScenarioError(where, f"not a valid PEM certificate: {e}") from None


def client_context(spec: Any) -> ssl.SSLContext:
    """Verify the peer (system CAs or ``spec.ca``); present ``spec.cert`` for mutual TLS."""
    ca = getattr(spec, "ca", None)
    ctx = ssl.create_default_context(cadata=ca or None)
    if getattr(spec, "insecure", False):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    cert = getattr(spec, "cert", None)
    if cert:
        _load_chain(ctx, cert, getattr(spec, "key", None))
    return ctx


def _load_chain(ctx: ssl.SSLContext, cert: str, key: str | None) -> None:
    # The ssl module loads a certificate chain only from a file: a private
    # (0600, mkstemp) file that lives for the duration of this call.
    fd, name = tempfile.mkstemp(prefix="mm-tls-", suffix=".pem")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(cert if not key else f"{cert.rstrip()}\n{key}")
        ctx.load_cert_chain(name)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


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
