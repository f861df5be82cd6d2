"""The `fnbox` command line: `serve`, and a client of a server (or, with --local, of a data directory).

Exit status: 0 done, 1 the operation failed (the error and what to do next on stderr),
2 a usage or settings error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from fnbox.server.cli.client import DEFAULT_URL, Client, ClientError
from fnbox.server.cli.output import Progress, format_log, format_size, table, to_json
from fnbox.server.cli.packing import PackError, pack

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """A command line that cannot be carried out as written (exit status 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, default in COMMON_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    handler: Handler = args.handler
    try:
        return handler(args)
    except UsageError as exc:
        print(f"fnbox: {exc}", file=sys.stderr)
        return 2
    except ClientError as exc:
        _print_error(exc, args)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


# ---- serve ------------------------------------------------------------------------------


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from fnbox import logs
    from fnbox.server import affinity, collector
    from fnbox.server.app import create_app
    from fnbox.server.connections import connection_limits, uvicorn_options
    from fnbox.server.settings import SettingsError, load_settings

    if args.import_dir is not None and not os.path.isdir(args.import_dir):
        print(f"fnbox: --import {args.import_dir}: no such directory", file=sys.stderr)
        return 2
    try:
        settings = load_settings(
            host=args.host, port=args.port, data_dir=args.data_dir, functions_location=args.import_dir
        )
    except SettingsError as exc:
        print(f"fnbox: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format)
    collector.tune()
    try:
        # Before uvicorn starts a thread.
        worker_cpus = affinity.pin_server(settings.server_cpu, workers=settings.runtime.workers > 0)
    except (ValueError, OSError) as exc:
        print(f"fnbox: SERVER_CPU: {exc}", file=sys.stderr)
        return 2
    if worker_cpus is not None:
        settings = dataclasses.replace(settings, runtime=dataclasses.replace(settings.runtime, worker_cpus=worker_cpus))
    if settings.log_format == "json":
        os.environ["LOG_FORMAT"] = "json"  # the workers' lines too
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        log_config=None,  # uvicorn's loggers write through the root's handler (logs.configure)
        access_log=settings.access_log,
        timeout_graceful_shutdown=math.ceil(settings.runtime.shutdown_grace),
        **uvicorn_options(connection_limits(settings)),
    )
    return 0


def migrate(args: argparse.Namespace) -> int:
    from fnbox.migrate import migrate_directory

    url = args.database_url or os.environ.get("FNBOX_DATABASE_URL")
    if not url:
        print("fnbox: migrate needs --database-url or FNBOX_DATABASE_URL", file=sys.stderr)
        return 2
    try:
        migration = migrate_directory(args.from_dir, url)
    except FileNotFoundError as exc:
        print(f"fnbox: --from-dir {exc}", file=sys.stderr)
        return 2
    print(migration.summary())
    return 0


# ---- workspaces -------------------------------------------------------------------------


def deploy(args: argparse.Namespace) -> int:
    try:
        upload = pack(Path(args.path))
    except (PackError, OSError) as exc:
        raise UsageError(str(exc)) from None
    for skipped in upload.skipped:
        print(f"fnbox: {skipped} left out (not a workspace.yaml, NAME.js, NAME.py or NAME.yaml)", file=sys.stderr)
    progress = None if args.json else Progress.for_upload(len(upload.data), sys.stderr)
    with _client(args) as client:
        try:
            document = client.import_archive(
                args.workspace, upload.data, filename=upload.filename, function=args.function, progress=progress
            )
        finally:
            if progress is not None:
                progress.finish()
    functions = sorted(document.get("functions") or {})
    count = f"{len(functions)} function{'' if len(functions) == 1 else 's'}"
    _emit(args, document, f"deployed workspace {args.workspace}: {count} ({', '.join(functions)})")
    return 0


def list_(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.workspace is None:
            names = client.list_workspaces()
            if not names and not args.json:
                print("no workspaces yet: deploy one with `fnbox deploy WORKSPACE PATH`", file=sys.stderr)
                return 0
            _emit(args, names, "\n".join(names))
            return 0
        document = client.get_workspace(args.workspace)
    rows = [
        (name, spec.get("language", "javascript"), _parameters(spec.get("parameters")), spec.get("description") or "")
        for name, spec in sorted((document.get("functions") or {}).items())
        if isinstance(spec, dict)
    ]
    _emit(
        args, document, table(("FUNCTION", "LANGUAGE", "PARAMETERS", "DESCRIPTION"), rows) if rows else "(no functions)"
    )
    return 0


def remove(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.delete_workspace(args.workspace)
    _emit(args, {"deleted": args.workspace}, f"deleted workspace {args.workspace}")
    return 0


def export(args: argparse.Namespace) -> int:
    with _client(args) as client:
        data = client.export_archive(args.workspace)
    target = args.output or f"{args.workspace}.tar.gz"
    if target == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    Path(target).write_bytes(data)
    _emit(
        args,
        {"workspace": args.workspace, "file": target, "size": len(data)},
        f"wrote {target} ({format_size(len(data))})",
    )
    return 0


def secret(args: argparse.Namespace) -> int:
    """The value never comes from the command line: other users see a process's arguments."""
    if args.local or args.data_dir is not None:
        raise UsageError("secrets are set through a server: drop --local")
    if args.action != "ls" and not args.name:
        raise UsageError(f"`fnbox secret {args.action}` needs the secret's name")
    from fnbox.server.cli.client import HttpClient

    with _client(args) as client:
        if not isinstance(client, HttpClient):  # _client gives HTTP without --local
            raise UsageError("secrets are set through a server")
        if args.action == "set":
            value = _secret_value(args.name)
            saved = client.set_secret(args.workspace, args.name, value)
            _emit(args, saved, f"set secret {args.name} of workspace {args.workspace}")
        elif args.action == "rm":
            client.delete_secret(args.workspace, args.name)
            _emit(args, {"deleted": args.name}, f"deleted secret {args.name} of workspace {args.workspace}")
        else:
            items = client.list_secrets(args.workspace)
            _emit(args, items, "\n".join(f"{item['name']}  {item['updated']}" for item in items) or "(no secrets)")
    return 0


def _secret_value(name: str) -> str:
    if sys.stdin.isatty():
        value = getpass.getpass(f"value of {name}: ")
    else:
        value = sys.stdin.read()
        if value.endswith("\n") and value.count("\n") == 1:
            value = value[:-1]  # `echo "$KEY" |` adds one
    if not value:
        raise UsageError("the secret's value is empty: pipe it on stdin or type it at the prompt")
    return value


# ---- runs and executions ----------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    parameters = _parameters_of(args)
    with _client(args) as client:
        if args.run_async:
            started = client.start(args.workspace, args.function, parameters)
            _emit(args, started, started["id"])
            if not args.json and sys.stderr.isatty():
                print(f"follow it with: fnbox logs {started['id']} -f", file=sys.stderr)
            return 0
        try:
            answer = client.run(args.workspace, args.function, parameters)
        except ClientError as exc:
            for entry in exc.logs or []:
                print(format_log(entry), file=sys.stderr)
            raise
    if args.json:
        print(to_json(answer))
        return 0
    for entry in answer.get("logs") or []:
        print(format_log(entry), file=sys.stderr)
    print(to_json(answer.get("result"), pretty=True))
    if sys.stderr.isatty():
        print(f"({answer.get('duration', 0):.2f} ms, execution {answer.get('execution', '-')})", file=sys.stderr)
    return 0


def logs(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if not args.follow:
            execution = client.get_execution(args.execution)
            entries = execution.get("logs") or []
            if args.tail is not None:
                entries = entries[max(len(entries) - args.tail, 0) :]
            if args.json:
                print(to_json({"id": execution["id"], "status": execution["status"], "logs": entries}))
                return 0
            for entry in entries:
                print(format_log(entry))
            if execution["status"] in ("accepted", "running"):
                print(
                    f"(execution {execution['status']}: follow it with `fnbox logs {args.execution} -f`)",
                    file=sys.stderr,
                )
            return 0
        for kind, data in client.follow(args.execution):
            if kind == "log":
                print(to_json(data) if args.json else format_log(data), flush=True)
                continue
            if args.json:
                print(to_json({"end": data}), flush=True)
            else:
                duration = "" if data.get("duration") is None else f" in {data['duration']:.2f} ms"
                print(f"execution {data['id']} {data['status']}{duration}", file=sys.stderr)
            if data.get("status") != "successful":
                error = data.get("error") or {}
                if not args.json and error:
                    print(f"{error.get('error', 'Error')}: {error.get('message', '')}", file=sys.stderr)
                return 1
    return 0


def executions(args: argparse.Namespace) -> int:
    with _client(args) as client:
        page = client.list_executions(
            workspace=args.workspace, function=args.function, status=args.status, limit=args.limit, after=args.after
        )
    if args.json:
        print(to_json(page))
        return 0
    rows = [
        (
            item["id"],
            item["status"],
            item["workspace"],
            item["function"],
            (item.get("created") or "")[:19].replace("T", " "),
            "" if item.get("duration") is None else f"{item['duration']:.2f} ms",
        )
        for item in page["executions"]
    ]
    if rows:
        print(table(("ID", "STATUS", "WORKSPACE", "FUNCTION", "CREATED (UTC)", "DURATION"), rows))
    else:
        print("no executions", file=sys.stderr)
    if page.get("next"):
        filters = [
            f"--{name} {value}" for name in ("workspace", "function", "status") if (value := getattr(args, name))
        ]
        print(
            f"more: fnbox executions {' '.join([*filters, f'--limit {args.limit}', '--after', page['next']])}",
            file=sys.stderr,
        )
    return 0


# ---- helpers ----------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> closing[Client]:
    data_dir = args.data_dir
    if args.local or data_dir is not None:
        if args.url:
            raise UsageError("--url talks to a server and --local to a data directory: pass one of them")
        from fnbox.server.cli.client import LocalClient
        from fnbox.server.settings import SettingsError, load_settings

        try:
            settings = load_settings(data_dir=data_dir)
        except SettingsError as exc:
            raise UsageError(str(exc)) from None
        return closing(LocalClient(settings.data_dir, settings.runtime))
    from fnbox.server.cli.client import HttpClient

    token = args.token or os.environ.get("FNBOX_TOKEN") or None
    return closing(HttpClient(args.url or os.environ.get("FNBOX_URL") or DEFAULT_URL, token=token))


def _emit(args: argparse.Namespace, data: Any, human: str) -> None:
    print(to_json(data) if args.json else human)


def _parameters(declared: Any) -> str:
    if not isinstance(declared, dict):
        return ""
    shown = []
    for name, spec in declared.items():
        spec = spec if isinstance(spec, dict) else {}
        text = f"{name}: {spec.get('type', 'any')}"
        if "default" in spec:
            text += f" = {json.dumps(spec['default'])}"
        shown.append(text)
    return ", ".join(shown)


def _parameters_of(args: argparse.Namespace) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    if args.params_json is not None:
        try:
            given = json.loads(args.params_json)
        except ValueError as exc:
            raise UsageError(f"--params-json is not valid JSON: {exc}") from None
        if not isinstance(given, dict):
            raise UsageError('--params-json must be a JSON object, such as \'{"name": "world"}\'')
        parameters.update(given)
    for item in args.param:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"-p {item!r}: write -p NAME=VALUE, such as -p name=world or -p count=3")
        try:
            parameters[key] = json.loads(raw)
        except ValueError:
            parameters[key] = raw  # not JSON: the text itself
    try:
        json.dumps(parameters, ensure_ascii=False).encode()
    except UnicodeEncodeError:  # command-line bytes that are not UTF-8 arrive as lone surrogates
        raise UsageError("-p and --params-json values must be UTF-8 text") from None
    return parameters


def _print_error(exc: ClientError, args: argparse.Namespace) -> None:
    print(f"fnbox: {exc.code + ': ' if exc.code else ''}{exc.message}", file=sys.stderr)
    details = {key: value for key, value in exc.details.items() if key != "execution"}
    if details:
        print(f"  details: {to_json(details)}", file=sys.stderr)
    if "execution" in exc.details:
        print(f"  execution: {exc.details['execution']} (see `fnbox logs {exc.details['execution']}`)", file=sys.stderr)
    hint = exc.hint or _hint(exc, args)
    if hint:
        print(f"  hint: {hint}", file=sys.stderr)


def _hint(exc: ClientError, args: argparse.Namespace) -> str | None:
    """What to do next, for the errors that have an obvious next step."""
    workspace = getattr(args, "workspace", None)
    if exc.code == "NotFound":
        if "function" in exc.details:
            return f"`fnbox ls {exc.details.get('workspace', workspace)}` lists its functions"
        if "workspace" in exc.details:
            return "`fnbox ls` lists the workspaces; `fnbox deploy WORKSPACE PATH` creates one"
        if "id" in exc.details:
            return "`fnbox executions` lists the executions"
    if exc.code == "InvalidParameters":
        return (
            f"`fnbox ls {workspace}` shows the declared parameters; -p values are read as JSON "
            "when they parse, so -p 'name=\"3\"' passes the text 3"
        )
    if exc.code == "CompilationError":
        return "fix the function named in the details and deploy again; the version stored before keeps serving"
    if exc.code == "PayloadTooLarge":
        return "the server takes bodies up to its REQUEST_MAX_SIZE: raise it on the server, or deploy in parts"
    if exc.code == "Overloaded":
        return "the server is busy: try again in a moment"
    if exc.code == "Unauthorized":
        return "the server has access control: set FNBOX_TOKEN (or pass --token) to a token it gave you"
    if exc.code == "Forbidden":
        return "ask the server's admin for a token with that scope and workspace (POST /v2/tokens)"
    return None


# ---- the parser -------------------------------------------------------------------------

DESCRIPTION = """\
Run JavaScript and Python functions in warm sandboxes.

`fnbox serve` starts the service; every other command talks to one (--url, default
$FNBOX_URL or http://127.0.0.1:4000) or, with --local, works on a data directory
directly through the Runtime, with no server (use it on a directory no server uses)."""

EPILOG = """\
examples:
  fnbox serve --import functions/          start, importing every archive in functions/
  fnbox deploy billing ./billing/          a folder of NAME.js / NAME.py (+ NAME.yaml)
  fnbox run billing invoice -p id=42       prints the result; logs go to stderr
  fnbox run billing invoice --async        prints an execution id
  fnbox logs EXECUTION -f                  follows its logs until it ends
  fnbox ls billing                         its functions, languages and parameters

run `fnbox COMMAND --help` for the options and an example of each command."""


#: The common options' values when they are not given (SUPPRESS leaves them unset).
COMMON_DEFAULTS: dict[str, Any] = {"url": None, "token": None, "local": False, "data_dir": None, "json": False}


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """--url, --local, --data-dir and --json, before or after the command (SUPPRESS: one never hides the other)."""
    where = parser.add_argument_group("server or data directory")
    where.add_argument("--url", default=argparse.SUPPRESS, help=f"the server (default $FNBOX_URL or {DEFAULT_URL})")
    where.add_argument(
        "--token",
        default=argparse.SUPPRESS,
        help="the bearer token, when the server has access control (default $FNBOX_TOKEN; prefer it: "
        "a flag shows in the process list)",
    )
    where.add_argument(
        "--local", action="store_true", default=argparse.SUPPRESS, help="work on a data directory, with no server"
    )
    where.add_argument(
        "--data-dir",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="the data directory of --local (default $FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH or data/functions/)",
    )
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON, for scripts")


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="fnbox", description=DESCRIPTION, epilog=EPILOG, formatter_class=formatter)
    add_common_options(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, handler: Handler, summary: str, example: str, *, client: bool = True
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=f"example:\n  {example}",
            formatter_class=formatter,
        )
        if client:
            add_common_options(sub)
        sub.set_defaults(handler=handler)
        return sub

    serve_ = command(
        "serve",
        serve,
        "start the HTTP service",
        "fnbox serve --port 4000 --data-dir data/functions --import functions/",
        client=False,
    )
    serve_.description = "Start the HTTP service. Settings come from the environment (see README); flags win."
    serve_.add_argument("--host", help="address to listen on (HOST, default 127.0.0.1)")
    serve_.add_argument("--port", type=int, help="port to listen on (PORT, default 4000)")
    serve_.add_argument(
        "--data-dir",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="where workspaces are stored (FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH)",
    )
    serve_.add_argument(
        "--import",
        dest="import_dir",
        metavar="DIR",
        help="import every archive in DIR at start (FUNCTIONS_LOCATION): DIR/WS.tar.gz into workspace WS, "
        "DIR/WS/*.tar.gz added to workspace WS; failures are logged and skipped",
    )

    sub = command(
        "migrate",
        migrate,
        "copy a data directory's workspaces, execution records, secrets and tokens into the database shared "
        "by several instances",
        "FNBOX_DATABASE_URL=postgresql://fnbox@db/fnbox fnbox migrate --from-dir data/functions",
        client=False,
    )
    sub.description = (
        f"{sub.description}\n"
        "Secrets stay encrypted (every instance needs the key that encrypted them), tokens stay hashes.\n"
        "Run it again: nothing is copied twice, a workspace or a secret deleted (or a token revoked) in\n"
        "the database since is never brought back, one changed there keeps its version, and a workspace\n"
        "or a secret new in the directory is copied. An execution record already there changes only to\n"
        "take the end the directory recorded since, unless it ended or an instance claimed it there."
    )
    sub.add_argument("--from-dir", metavar="DIR", required=True, help="the data directory to copy")
    sub.add_argument("--database-url", metavar="URL", help="the database (default $FNBOX_DATABASE_URL)")

    sub = command(
        "deploy",
        deploy,
        "save a workspace from a YAML/JSON file, a folder or an archive",
        "fnbox deploy billing ./billing/        # or billing.yaml, billing.tar.gz, invoice.py",
    )
    sub.add_argument("workspace", help="the workspace to create or update")
    sub.add_argument(
        "path",
        help="a workspace YAML/JSON file (replaces the workspace); a folder of NAME.js / NAME.py with optional "
        "NAME.yaml, or one such file (adds or replaces those functions); a folder with workspace.yaml; "
        "or a .zip/.tar/.tar.gz/.tar.xz archive",
    )
    sub.add_argument("--function", help="the name of a function.py / function.js (default: the file or folder name)")

    sub = command("ls", list_, "list the workspaces, or the functions of one", "fnbox ls billing")
    sub.add_argument("workspace", nargs="?", help="show this workspace's functions")

    sub = command(
        "secret",
        secret,
        "set (the value read from stdin, or a prompt), list or delete the secrets of a workspace",
        'printf %s "$STRIPE_KEY" | fnbox secret set billing STRIPE_KEY',
    )
    sub.add_argument("action", choices=("set", "ls", "rm"), help="set a secret, list their names, or delete one")
    sub.add_argument("workspace", help="the workspace the secret belongs to")
    sub.add_argument(
        "name", nargs="?", help="the secret's name (set, rm): functions read process.env.NAME / env['NAME']"
    )

    sub = command("rm", remove, "delete a workspace and drop its warm sandboxes", "fnbox rm billing")
    sub.add_argument("workspace", help="the workspace to delete")

    sub = command(
        "export",
        export,
        "save a workspace as a .tar.gz that `fnbox deploy` takes back",
        "fnbox export billing -o billing-v2.tar.gz",
    )
    sub.add_argument("workspace", help="the workspace to export")
    sub.add_argument(
        "-o", "--output", metavar="FILE", help="where to write it (default WORKSPACE.tar.gz; - for stdout)"
    )

    sub = command(
        "run",
        run,
        "run a function: its result goes to stdout, its logs to stderr",
        "fnbox run billing invoice -p id=42 -p draft=true --params-json '{\"lines\": [1, 2]}'",
    )
    sub.add_argument("workspace", help="the workspace of the function")
    sub.add_argument("function", help="the function to run")
    sub.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help='a parameter; VALUE is read as JSON when it parses (3, true, [1,2], "3"), else as text',
    )
    sub.add_argument("--params-json", metavar="JSON", help="parameters as one JSON object; -p wins over it")
    sub.add_argument(
        "--async",
        dest="run_async",
        action="store_true",
        help="start an execution and print its id (follow it with `fnbox logs ID -f`)",
    )

    sub = command("logs", logs, "show an execution's logs, or follow them until it ends", "fnbox logs 0c3f9a... -f")
    sub.add_argument("execution", help="the execution id (from `fnbox run --async` or `fnbox executions`)")
    sub.add_argument(
        "-f", "--follow", action="store_true", help="print entries as they come; exit 1 unless it succeeds"
    )
    sub.add_argument("--tail", type=int, metavar="N", help="only the last N entries")

    sub = command(
        "executions",
        executions,
        "list executions, newest first",
        "fnbox executions --workspace billing --status failed --limit 20",
    )
    sub.add_argument("--workspace", help="only this workspace's")
    sub.add_argument("--function", help="only this function's")
    sub.add_argument("--status", choices=("accepted", "running", "successful", "failed", "dismissed"))
    sub.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    sub.add_argument("--after", metavar="CURSOR", help="the next page, from the cursor a listing printed")
    return parser


if __name__ == "__main__":
    sys.exit(main())
