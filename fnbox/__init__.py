"""fnbox: run untrusted JavaScript and Python functions in warm sandboxes.

This is the surface an embedding application uses: the Runtime facade, its options,
and the errors it raises. Everything else is fnbox's own and may change.

    from fnbox import Runtime, RuntimeOptions

    runtime = Runtime("data/functions", options=RuntimeOptions(workers=0))
"""

from fnbox.sandboxes.errors import (
    CompilationError,
    Conflict,
    Dismissed,
    FnboxError,
    Forbidden,
    FunctionError,
    InsufficientStorage,
    InternalError,
    InvalidParameters,
    InvalidRequest,
    MemoryLimitExceeded,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    SandboxCrashed,
    TimeoutExceeded,
    Unauthorized,
)
from fnbox.workspaces.runtime import Runtime, RuntimeOptions

__all__ = [
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
    "Runtime",
    "RuntimeOptions",
    "SandboxCrashed",
    "TimeoutExceeded",
    "Unauthorized",
]
