"""The errors a user reads. Each says what failed, why, and what to run; the CLI and
the API turn them into exit codes and HTTP statuses by the table at the bottom."""

from __future__ import annotations


class OneboxError(Exception):
    """Base of every error meant for the user: message first, then the fix."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.fix}" if self.fix else self.message


class InvalidInput(OneboxError):
    """The request itself is malformed: a bad name, address or option."""


class NotFound(OneboxError):
    """A lab, machine, image or template that the request names does not exist."""


class Conflict(OneboxError):
    """The request clashes with something that exists: a name, an address, a subnet."""


class EngineUnavailable(OneboxError):
    """The Docker engine cannot be reached."""


class OperationFailed(OneboxError):
    """The engine accepted the request but the work failed (a build, a start)."""


class StartFailed(OperationFailed):
    """A machine's own command ended at once: the request's image or command is at fault,
    not the server, so the API answers 422."""


EXIT_CODES: dict[type[OneboxError], int] = {
    InvalidInput: 2,
    NotFound: 3,
    Conflict: 4,
    EngineUnavailable: 5,
    OperationFailed: 6,
    StartFailed: 6,
}

HTTP_STATUSES: dict[type[OneboxError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    Conflict: 409,
    EngineUnavailable: 503,
    OperationFailed: 500,
    StartFailed: 422,
}


def exit_code(error: OneboxError) -> int:
    for kind in type(error).__mro__:
        if kind in EXIT_CODES:
            return EXIT_CODES[kind]
    return 1


def http_status(error: OneboxError) -> int:
    for kind in type(error).__mro__:
        if kind in HTTP_STATUSES:
            return HTTP_STATUSES[kind]
    return 500
