"""Templates in the editor: the skeleton of a new one and a spec as YAML text (pure).

Checking and previewing a draft is the appliance's work (``POST
/api/v1/templates/validate`` and ``/preview``): the TUI never runs the agent's code.
"""

from __future__ import annotations

from typing import Any

import yaml

SKELETON = """\
transport:
  mqtt: {url: "mqtt://127.0.0.1:1883", topic: "lab/{device_id}/telemetry", qos: 0}
interval: 1s
payload:
  device: {device_id: {}}
  seq: {counter: {}}
  temp: {uniform: {min: 18.0, max: 26.0}}
  ts: {timestamp: {format: epoch_ms}}
"""


def to_text(spec: dict[str, Any]) -> str:
    return yaml.safe_dump(spec, sort_keys=False, default_flow_style=False, allow_unicode=True)
