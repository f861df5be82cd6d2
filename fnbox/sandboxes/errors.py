"""Every failure a caller of fnbox can see, one class per error code (the README lists them).

They live at the bottom layer (sandboxes) so that every layer above can raise them
without importing upwards. Engine exceptions (mini-racer, RestrictedPython, OS) are
translated into these at the sandbox boundary; the HTTP layer maps them to JSON in
one place.

    FnboxError
    ├── InvalidRequest        400
    ├── CompilationError      400
    ├── InvalidParameters     400
    ├── Unauthorized          401  (no, a wrong, revoked or expired bearer token)
    ├── Forbidden             403  (a token without the scope or the workspace it needs)
    ├── NotFound              404
    ├── Conflict              409  (an execution id taken, or an execution already ended)
    ├── PreconditionFailed    412  (If-Match names a version that is no longer the stored one)
    ├── PayloadTooLarge       413
    ├── FunctionError         500
    ├── TimeoutExceeded       504
    ├── MemoryLimitExceeded   500
    ├── SandboxCrashed        500
    ├── Overloaded            503
    ├── InsufficientStorage   507  (the data directory is full or read-only: nothing was written)
    ├── InternalError         500  (a bug in fnbox, never a tenant's doing)
    └── Dismissed             -    (only in an execution's record: cancelled, or its service stopped)
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ERROR_CLASSES",
    "CompilationError",
    "Conflict",
    "Dismissed",
    "FnboxError",
    "Forbidden",
    "FunctionError",
    "InsufficientStorage",
    "InternalError",
    "InvalidParameters",
    "InvalidRequest",
    "MemoryLimitExceeded",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "PreconditionFailed",
    "SandboxCrashed",
    "TimeoutExceeded",
    "Unauthorized",
    "error_from_json",
]


class FnboxError(Exception):
    """A failure with one of the error codes below; a failed run also carries its logs and duration."""

    code: ClassVar[str] = "InternalError"
    status: ClassVar[int] = 500
    #: False for a code that is only ever the error of an execution record, never an HTTP answer.
    answered: ClassVar[bool] = True

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        logs: list[dict[str, Any]] | None = None,
        duration: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.logs = logs
        self.duration = duration
        #: The record the Runtime kept of the failed run, if it keeps one.
        self.execution_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message, "details": self.details}
        if self.logs is not None:
            body["logs"] = self.logs
        if self.duration is not None:
            body["duration"] = self.duration
        return body


class InvalidRequest(FnboxError):
    code = "InvalidRequest"
    status = 400


class CompilationError(FnboxError):
    code = "CompilationError"
    status = 400


class InvalidParameters(FnboxError):
    code = "InvalidParameters"
    status = 400


class Unauthorized(FnboxError):
    code = "Unauthorized"
    status = 401


class Forbidden(FnboxError):
    code = "Forbidden"
    status = 403


class NotFound(FnboxError):
    code = "NotFound"
    status = 404


class Conflict(FnboxError):
    code = "Conflict"
    status = 409


class PreconditionFailed(FnboxError):
    """A conditional save or delete (If-Match) whose version is no longer the stored one."""

    code = "PreconditionFailed"
    status = 412


class PayloadTooLarge(FnboxError):
    code = "PayloadTooLarge"
    status = 413


class FunctionError(FnboxError):
    code = "FunctionError"
    status = 500


class TimeoutExceeded(FnboxError):
    code = "TimeoutExceeded"
    status = 504


class MemoryLimitExceeded(FnboxError):
    code = "MemoryLimitExceeded"
    status = 500


class SandboxCrashed(FnboxError):
    code = "SandboxCrashed"
    status = 500


class Overloaded(FnboxError):
    code = "Overloaded"
    status = 503


class InsufficientStorage(FnboxError):
    """A save that cannot be written (a full disk, a read-only data directory); nothing of it was kept."""

    code = "InsufficientStorage"
    status = 507


class InternalError(FnboxError):
    """A bug in fnbox: the request's answer says only that it was logged."""

    code = "InternalError"
    status = 500


class Dismissed(FnboxError):
    """An execution that will not end by itself: cancelled, or cut short by a stop of the service.

    It is never an HTTP answer, only the error of the execution's record.
    """

    code = "Dismissed"
    status = 500
    answered = False


#: Every error class, in the order of the README's table.
ERROR_CLASSES: tuple[type[FnboxError], ...] = (
    InvalidRequest,
    CompilationError,
    InvalidParameters,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    PreconditionFailed,
    PayloadTooLarge,
    FunctionError,
    TimeoutExceeded,
    MemoryLimitExceeded,
    SandboxCrashed,
    Overloaded,
    InsufficientStorage,
    InternalError,
    Dismissed,
)
_BY_CODE = {cls.code: cls for cls in ERROR_CLASSES}


def error_from_json(body: dict[str, Any]) -> FnboxError:
    """Rebuild an error sent as `FnboxError.to_json()` (from a worker process, say)."""
    cls = _BY_CODE.get(str(body.get("error")), SandboxCrashed)
    return cls(
        str(body.get("message", "")),
        details=body.get("details") if isinstance(body.get("details"), dict) else None,
        logs=body.get("logs"),
        duration=body.get("duration"),
    )
