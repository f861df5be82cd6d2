"""HTML pages of the OGC API - Processes face, drawn from the same documents as its JSON.

Names, descriptions, schemas and ids are tenant data: every value is escaped, and the
pages carry no script (the routes also send a Content-Security-Policy that forbids any).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from html import escape
from typing import Any

__all__ = ["PAGES", "render_page"]

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:64rem;margin:1.5rem auto;padding:0 1rem;color:#222;line-height:1.4}
nav{font-size:.9rem;margin-bottom:1rem}nav a{margin-right:.8rem}
code,pre{background:#f4f4f4;border-radius:3px;padding:.1rem .3rem}pre{padding:.6rem;overflow:auto}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}
.status{font-weight:bold}.failed{color:#b00}.successful{color:#070}.dismissed{color:#666}
"""


def _e(value: Any) -> str:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    return escape("" if value is None else str(value), quote=True)


def _a(href: str, text: Any) -> str:
    return f'<a href="{_e(href)}">{_e(text)}</a>'


def _html_href(href: str) -> str:
    """The HTML view of one of our JSON links (a browser would negotiate it anyway)."""
    return href + ("&" if "?" in href else "?") + "f=html"


def _links(links: Iterable[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{_e(item.get('rel'))}</td><td>{_a(item['href'], item.get('title') or item['href'])}</td>"
        f"<td>{_e(item.get('type'))}</td></tr>"
        for item in links
    )
    return f"<h2>Links</h2><table><tr><th>rel</th><th>link</th><th>type</th></tr>{rows}</table>"


def _next(document: dict[str, Any]) -> str:
    found = [item["href"] for item in document.get("links", []) if item.get("rel") == "next"]
    return f"<p>{_a(_html_href(found[0]), 'next page')}</p>" if found else ""


def _landing(document: dict[str, Any], home: str) -> str:
    return f"<h1>{_e(document['title'])}</h1><p>{_e(document['description'])}</p>{_links(document['links'])}"


def _conformance(document: dict[str, Any], home: str) -> str:
    items = "".join(f"<li><code>{_e(uri)}</code></li>" for uri in document["conformsTo"])
    return f"<h1>Conformance</h1><ul>{items}</ul>"


def _processes(document: dict[str, Any], home: str) -> str:
    rows = "".join(
        f"<tr><td>{_a(_html_href(item['links'][0]['href']), item['id'])}</td><td>{_e(item['description'])}</td>"
        f"<td><code>{_e(item['version'])}</code></td></tr>"
        for item in document["processes"]
    )
    table = f"<table><tr><th>process</th><th>description</th><th>version</th></tr>{rows}</table>" if rows else ""
    return f"<h1>Processes</h1>{table or '<p>No process: save a workspace first.</p>'}{_next(document)}"


def _process(document: dict[str, Any], home: str) -> str:
    rows = "".join(
        f"<tr><td><code>{_e(name)}</code></td><td><code>{_e(item['schema'])}</code></td>"
        f"<td>{'optional' if item['minOccurs'] == 0 else 'required'}</td><td>{_e(item['description'])}</td></tr>"
        for name, item in document["inputs"].items()
    )
    inputs = (
        f"<table><tr><th>input</th><th>schema</th><th></th><th>description</th></tr>{rows}</table>"
        if rows
        else "<p>None.</p>"
    )
    execute = next(item["href"] for item in document["links"] if item["rel"].endswith("/execute"))
    example = {"inputs": {name: item["schema"].get("default") for name, item in document["inputs"].items()}}
    curl = f"curl -s {execute} -H 'Content-Type: application/json' -d '{json.dumps(example)}'"
    return (
        f"<h1>{_e(document['id'])}</h1><p>{_e(document['description'])}</p>"
        f"<p>Version <code>{_e(document['version'])}</code>; "
        f"{_e(', '.join(document['jobControlOptions']))}.</p>"
        f"<h2>Inputs</h2>{inputs}<h2>Output</h2><p><code>result</code>: the value the function returns.</p>"
        f"<h2>Execute</h2><pre>{_e(curl)}</pre><p>Add <code>-H 'Prefer: respond-async'</code> "
        f"to get a job to follow.</p>{_links(document['links'])}"
    )


def _jobs(document: dict[str, Any], home: str) -> str:
    rows = "".join(
        f"<tr><td>{_a(_html_href(item['links'][0]['href']), item['jobID'])}</td><td>{_e(item['processID'])}</td>"
        f"<td class='status {_e(item['status'])}'>{_e(item['status'])}</td><td>{_e(item.get('created'))}</td>"
        f"<td>{_e(item['message'])}</td></tr>"
        for item in document["jobs"]
    )
    table = (
        f"<table><tr><th>job</th><th>process</th><th>status</th><th>created</th><th>message</th></tr>{rows}</table>"
        if rows
        else "<p>No job.</p>"
    )
    return f"<h1>Jobs</h1>{table}{_next(document)}"


def _job(document: dict[str, Any], home: str) -> str:
    fields = ("processID", "status", "message", "progress", "created", "started", "finished", "updated")
    rows = "".join(f"<tr><th>{name}</th><td>{_e(document[name])}</td></tr>" for name in fields if name in document)
    return f"<h1>Job <code>{_e(document['jobID'])}</code></h1><table>{rows}</table>{_links(document['links'])}"


PAGES = {
    "landing": ("fnbox: OGC API - Processes", _landing),
    "conformance": ("Conformance", _conformance),
    "processes": ("Processes", _processes),
    "process": ("Process", _process),
    "jobs": ("Jobs", _jobs),
    "job": ("Job", _job),
}


def render_page(page: str, document: dict[str, Any], home: str) -> str:
    """The page `page` (a key of PAGES) for `document`; `home` is the landing page's URL."""
    title, draw = PAGES[page]
    nav = " ".join(
        _a(_html_href(href), text)
        for href, text in ((home, "fnbox"), (home + "processes", "processes"), (home + "jobs", "jobs"))
    )
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{_STYLE}</style></head>"
        f"<body><nav>{nav}</nav>{draw(document, home)}</body></html>"
    )
