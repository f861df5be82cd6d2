"""The routes of function archives: import a zip or tar into a workspace, export one.

An archive comes as the raw request body (its format is recognised from its content,
whatever the Content-Type says) or as the `archive` field of a multipart/form-data upload.
The uploaded file's name (the multipart filename, or a raw body's Content-Disposition)
names a one-function archive's `function.py`; `?function=NAME` wins over it. What an archive may hold,
and every refusal of a hostile one, is `workspaces.archives`'s business.
"""

from __future__ import annotations

import asyncio
from email.message import Message

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fnbox.archives.archive import write_archive
from fnbox.sandboxes.errors import InvalidRequest
from fnbox.server.inputs import runtime_of

__all__ = ["archive_routes"]

#: The multipart field that holds the archive: `curl -F archive=@greet.tar.gz`.
ARCHIVE_FIELD = "archive"
HOW = (
    f"send the archive as the request body, or as the `{ARCHIVE_FIELD}` field of a multipart upload"
    f" (curl -F {ARCHIVE_FIELD}=@greet.tar.gz)"
)


async def import_archive(request: Request) -> Response:
    """
    ---
    summary: Import a zip, tar, tar.gz or tar.xz archive as a new version of the workspace
    description: >
      The archive is the raw body (its format is read from its content) or the `archive` field of
      a multipart/form-data upload. It holds a workspace.yaml, which replaces the workspace; or
      NAME.js / NAME.py files, each with an optional NAME.yaml (parameters, timeout, memory,
      description), which add or replace those functions; or a single function.py / function.js,
      which becomes the function named after the uploaded file (greet.tar.gz gives greet) or
      `?function=`. The new version is compiled before it is stored, as for a JSON save.
      Hostile archives (links, traversal, bombs, duplicates) are refused and change nothing.
    parameters:
      - {name: function, in: query, description: 'names the function of a function.py or function.js archive', schema: {type: string}}
    requestBody:
      content:
        application/octet-stream: {schema: {type: string, format: binary}}
        multipart/form-data: {schema: {type: object, properties: {archive: {type: string, format: binary}}}}
    responses:
      200: {description: 'The stored document, with its new version as ETag'}
      400: {description: InvalidRequest (a bad or hostile archive) or CompilationError (details name the function and line)}
      413: {description: PayloadTooLarge}
    """
    data, filename, function = await _upload(request)
    function = request.query_params.get("function", function)
    workspace = await runtime_of(request).import_archive(
        request.path_params["workspace"], data, filename=filename, function=function
    )
    return JSONResponse(workspace.document, headers={"ETag": f'"{workspace.version}"'})


async def export_archive(request: Request) -> Response:
    """
    ---
    summary: The workspace as a .tar.gz holding its workspace.yaml, which imports back to the same workspace
    responses:
      200: {description: 'The archive (application/gzip), as an attachment named {workspace}.tar.gz'}
      404: {description: NotFound}
    """
    workspace = runtime_of(request).get_workspace(request.path_params["workspace"])
    data = await asyncio.to_thread(write_archive, workspace.document)
    return Response(
        data,
        media_type="application/gzip",
        headers={
            "Content-Disposition": f'attachment; filename="{workspace.name}.tar.gz"',
            "ETag": f'"{workspace.version}"',
        },
    )


async def _upload(request: Request) -> tuple[bytes, str | None, str | None]:
    """The archive's bytes, the uploaded file's name and a `function` form field, if any."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == "multipart/form-data":
        # Every byte still passes the body size limit; the form holds one file and a few fields.
        async with request.form(max_files=1, max_fields=8) as form:
            upload, function = form.get(ARCHIVE_FIELD), form.get("function")
            if not isinstance(upload, UploadFile):
                raise InvalidRequest(f"the multipart upload has no file field `{ARCHIVE_FIELD}`: {HOW}")
            data = await upload.read()
            filename = upload.filename
            function = function if isinstance(function, str) else None
    else:
        data, function = await request.body(), None
        filename = _disposition_filename(request.headers.get("content-disposition"))
    if not data:
        raise InvalidRequest(f"the archive is empty: {HOW}")
    return data, filename, function


def _disposition_filename(header: str | None) -> str | None:
    """`attachment; filename="greet.tar.gz"` (or RFC 2231's filename*=) gives greet.tar.gz."""
    if not header:
        return None
    message = Message()
    message["content-disposition"] = header
    filename = message.get_filename()
    return filename if isinstance(filename, str) else None


archive_routes = [
    Route("/v2/functions/{workspace}/archive", import_archive, methods=["PUT", "POST"]),
    Route("/v2/functions/{workspace}/archive", export_archive, methods=["GET"]),
]
