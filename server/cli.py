"""The `fnbox` command line."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from server.app import create_app
from server.settings import SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fnbox", description="Run JavaScript and Python functions in warm sandboxes.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="start the HTTP service",
        description="Start the HTTP service. Settings come from the environment (see README); flags win.",
        epilog="example: fnbox serve --port 4000 --data-dir data/functions",
    )
    serve.add_argument("--host", help="address to listen on (HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (PORT, default 4000)")
    serve.add_argument("--data-dir", help="where workspaces are stored (FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(host=args.host, port=args.port, data_dir=args.data_dir)
    except SettingsError as exc:
        print(f"fnbox: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=settings.access_log,
        timeout_graceful_shutdown=settings.shutdown_grace,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
