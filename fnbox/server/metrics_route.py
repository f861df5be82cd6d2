"""GET /metrics: the Prometheus text of the server and of its worker processes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fnbox import metrics
from fnbox.server.inputs import runtime_of

__all__ = ["metrics_routes"]


async def scrape(request: Request) -> Response:
    """
    ---
    summary: Metrics in the Prometheus text format (a read or admin token when access control is on)
    responses:
      200: {description: 'Runs, durations, queues, warm sandboxes, compiles, worker restarts, records, HTTP requests'}
    """
    pool = runtime_of(request).pool
    collect = getattr(pool, "metrics", None)
    texts = await collect() if collect is not None else []
    return Response(metrics.merged_exposition(texts), media_type=metrics.CONTENT_TYPE)


metrics_routes = [Route("/metrics", scrape, methods=["GET"])]
