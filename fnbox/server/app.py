"""The Starlette application factory.

The app serves every route through Starlette's middleware and routing, except the warm
call `POST /v2/functions/{workspace}/run/{function}`, which its lean path answers in
front of them (`runpath.RunPath`, same behaviour at a fraction of the cost);
`create_app(lean_run=False)` sends that route the general way too, for comparison.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp

from fnbox import metrics
from fnbox.archives.imports import import_directory
from fnbox.archives.remote import import_s3
from fnbox.objects import is_s3
from fnbox.sandboxes.errors import FnboxError
from fnbox.server.access import AccessControl, FailedAttempts, warn_if_open
from fnbox.server.limits import BodySizeLimit
from fnbox.server.observe import Observe
from fnbox.server.pgtokens import open_tokens
from fnbox.server.responses import handle_fnbox_error, handle_http_exception, handle_unexpected
from fnbox.server.routes import routes, run_function
from fnbox.server.runpath import RunPath
from fnbox.server.settings import Settings, load_settings
from fnbox.workspaces.runtime import Runtime

__all__ = ["create_app"]

logger = logging.getLogger("fnbox")


class App(Starlette):
    """Starlette, with the lean path of runs in front of its middleware when `lean_run` is set."""

    #: Wraps the general middleware stack in the lean path; None: no lean path.
    lean_run: Callable[[ASGIApp], ASGIApp] | None = None

    def build_middleware_stack(self) -> ASGIApp:
        general = super().build_middleware_stack()
        return general if self.lean_run is None else self.lean_run(general)


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None, lean_run: bool = True) -> Starlette:
    """Build the app; `runtime` lets tests and embedders bring their own.

    `lean_run=False` leaves runs to the general middleware and routing (tests compare both).
    """
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

    failures = FailedAttempts()  # one limit on failed attempts, whichever path a request takes
    app = App(
        routes=routes,
        middleware=[
            Middleware(Observe),
            Middleware(AccessControl, tokens=tokens, failures=failures),
            Middleware(BodySizeLimit, max_size=settings.request_max_size),
        ],
        exception_handlers={
            FnboxError: handle_fnbox_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        lifespan=lifespan,
    )
    if lean_run:
        app.lean_run = functools.partial(
            RunPath,
            route=next(r for r in routes if isinstance(r, Route) and r.endpoint is run_function),
            router=app.router,
            runtime=runtime,
            access=AccessControl(app.router, tokens=tokens, failures=failures),  # its `admit` only
            max_size=settings.request_max_size,
        )
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.tokens = tokens
    return app
