"""The human docs page: the OpenAPI routes and the error codes, as plain HTML.

Self-contained (no script or stylesheet from elsewhere), so it works offline.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from fnbox.sandboxes.errors import ERROR_CLASSES

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{background:#f4f4f4;padding:.1rem .3rem;border-radius:3px}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
.method{font-weight:bold;text-transform:uppercase}
"""


def render_docs(schema: dict[str, Any]) -> str:
    info = schema.get("info", {})
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(info.get('title', 'fnbox'))} API</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape(info.get('title', 'fnbox'))} API</h1><p>{escape(info.get('description', ''))}</p>",
        "<p>The machine-readable description is at <a href='/openapi.json'>/openapi.json</a>.</p>",
        "<h2>Authentication</h2><p>With access control on (FNBOX_ADMIN_TOKEN set, or tokens made), every route "
        "but <code>/sys/healthcheck</code> needs the header <code>Authorization: Bearer &lt;token&gt;</code> "
        "(the OpenAPI security scheme <code>bearer</code>). Tokens carry the scopes admin, deploy, run and read, "
        "limited to workspace names or patterns; see <code>POST /v2/tokens</code>.</p>",
        "<h2>Routes</h2>",
    ]
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            parts.append(f"<h3><span class='method'>{escape(method)}</span> <code>{escape(path)}</code></h3>")
            parts.append(f"<p>{escape(operation.get('summary', ''))}</p>")
            example = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("example")
            if example is not None:
                parts.append(f"<p>Body, for example:</p><pre>{escape(_json(example))}</pre>")
            responses = operation.get("responses", {})
            if responses:
                parts.append("<table><tr><th>status</th><th>answer</th></tr>")
                for status, response in responses.items():
                    parts.append(
                        f"<tr><td>{escape(str(status))}</td><td>{escape(response.get('description', ''))}</td></tr>"
                    )
                parts.append("</table>")
    parts.append(
        '<h2>Errors</h2><p>Every error is <code>{"error": code, "message": ..., "details": {...}}</code>; '
        "a failed run also carries <code>logs</code> and <code>duration</code>.</p>"
    )
    parts.append("<table><tr><th>code</th><th>status</th></tr>")
    for error in ERROR_CLASSES:
        status = error.status if error.answered else "(in records only)"
        parts.append(f"<tr><td>{escape(error.code)}</td><td>{status}</td></tr>")
    parts.append("</table></body></html>")
    return "".join(parts)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2)
