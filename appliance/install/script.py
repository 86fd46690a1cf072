"""``install.sh`` as served: the template with the appliance's URL and version baked in."""

from __future__ import annotations

import re
from importlib import resources

from appliance.install.wheelhouse import agent_version

TEMPLATE = "install.sh"
AGENT_UNIT = "mockmock-agent.service"

# The URL lands inside a shell script: only what a URL's scheme and authority can
# hold, nothing a shell would read specially (no quotes, spaces, $, `, ;).
_ORIGIN = re.compile(
    r"^https?://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])"
    r"(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~/-]{0,200})?$"
)


def safe_base_url(url: str) -> str:
    """``url`` without a trailing slash when it is a plain http(s) base URL, else ''."""
    url = url.rstrip("/")
    return url if _ORIGIN.match(url) else ""


def _package_text(*parts: str) -> str:
    node = resources.files("appliance.install")
    for part in parts:
        node = node / part
    return node.read_text()


def agent_unit() -> str:
    """The board's systemd unit (deploy/systemd/mockmock-agent.service)."""
    return _package_text("systemd", AGENT_UNIT)


def render(base_url: str) -> str:
    """The installer, defaulting to ``base_url`` (empty when it is not a safe URL)."""
    text = _package_text(TEMPLATE)
    unit = agent_unit().rstrip("\n")
    if "\nMOCKMOCK_UNIT\n" in f"\n{unit}\n":
        raise ValueError("the agent unit may not hold the here-document's end marker")
    return (
        text.replace("__MOCKMOCK_URL__", safe_base_url(base_url))
        .replace("__AGENT_VERSION__", agent_version())
        .replace("__AGENT_UNIT__", unit)
    )
