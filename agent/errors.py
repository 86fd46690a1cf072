"""Errors the agent and the scenario parser raise for user mistakes."""

from __future__ import annotations


class AgentError(Exception):
    """Something the operator can fix; shown as one line, never a traceback."""


class ScenarioError(AgentError):
    """A scenario or template field is wrong: ``path`` names it exactly."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message
