"""The appliance's error family; the API edge maps them to 4xx with a message."""

from __future__ import annotations


class ApplianceError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ApplianceError):
    status_code = 404


class Conflict(ApplianceError):
    status_code = 409


class Unauthorized(ApplianceError):
    status_code = 401


class Forbidden(ApplianceError):
    status_code = 403


class TooLarge(ApplianceError):
    status_code = 413
