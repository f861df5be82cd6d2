"""The Starlette application factory."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from fnbox import metrics
from fnbox.archives.imports import import_directory
from fnbox.archives.remote import import_s3
from fnbox.objects import is_s3
from fnbox.sandboxes.errors import FnboxError
from fnbox.server.access import AccessControl, warn_if_open
from fnbox.server.limits import BodySizeLimit
from fnbox.server.observe import Observe
from fnbox.server.pgtokens import open_tokens
from fnbox.server.responses import handle_fnbox_error, handle_http_exception, handle_unexpected
from fnbox.server.routes import routes
from fnbox.server.settings import Settings, load_settings
from fnbox.workspaces.runtime import Runtime

__all__ = ["create_app"]

logger = logging.getLogger("fnbox")


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> Starlette:
    """Build the app; `runtime` lets tests and embedders bring their own."""
    settings = settings or load_settings()
    # A function may never reach fnbox's own listening socket, whatever FUNCTIONS_EGRESS allows.
    own = dataclasses.replace(settings.runtime, egress_own=((settings.host, settings.port),))
    runtime = runtime or Runtime(settings.data_dir, options=own)
    tokens = open_tokens(runtime, settings.data_dir, admin_token=settings.admin_token)
    metrics.per_workspace(settings.metrics_per_workspace)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start(recompile=settings.update_scripts_on_startup)
        warn_if_open(tokens, settings.host)  # once the tokens of a shared database are read
        try:
            if settings.functions_location is not None:
                if is_s3(settings.functions_location):
                    await import_s3(runtime, settings.functions_location)
                else:
                    await import_directory(runtime, settings.functions_location)
            yield
        finally:
            await runtime.close()

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(Observe),
            Middleware(AccessControl, tokens=tokens),
            Middleware(BodySizeLimit, max_size=settings.request_max_size),
        ],
        exception_handlers={
            FnboxError: handle_fnbox_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.tokens = tokens
    return app
