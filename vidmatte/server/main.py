"""`vidmatte serve`: the options, then data directory, model and uvicorn, in that order.

Only click is imported at module level: `vidmatte serve --help`, and refusing an unsafe bind,
cost nothing. The socket is bound before the model loads (a port in use fails at once), and the
model is loaded before the first request is accepted.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import VidmatteError
from ..options import PRECISION_CHOICES, PRECISION_HELP
from .security import is_loopback

if TYPE_CHECKING:
    from ..engine import MattingEngine
    from .jobs import MatteFunction

log = logging.getLogger("vidmatte.server")
#: Shortest API key accepted: a guessable key is no lock.
MIN_KEY_LENGTH = 16


class ServeError(VidmatteError):
    """The server cannot start as asked (one line, exit code 2)."""

    exit_code = 2


@dataclass(frozen=True)
class ServerConfig:
    """Everything `vidmatte serve` was asked for."""

    host: str = "127.0.0.1"
    port: int = 7000
    data: Path = Path("vidmatte-data")
    api_key: str | None = None
    jobs: int = 1
    still_workers: int = 1
    still_queue: int = 64
    max_upload: int = 2 << 30
    queue_limit: int = 100
    keep: float = 86400.0
    max_attempts: int = 2
    cors: tuple[str, ...] = ()
    webhooks: bool = False
    device: str = "auto"
    precision: str = "auto"
    quiet: bool = False
    workers: int | None = None
    cluster: str | None = None


def default_data_dir() -> Path:
    """$XDG_DATA_HOME/vidmatte/serve (~/.local/share/vidmatte/serve)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "vidmatte" / "serve"


def parse_size(text: str) -> int:
    """`2G`, `500M`, `64K`, `1000000` (bytes; K/M/G/T are powers of 1024)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", text.lower())
    if not match:
        raise ValueError(f"{text!r} is not a size; use e.g. 500M or 2G")
    number, unit = match.groups()
    return int(float(number) * 1024 ** " kmgt".index(unit or " "))


def parse_duration(text: str) -> float:
    """`24h`, `30m`, `7d`, `90s` or seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text.lower())
    if not match:
        raise ValueError(f"{text!r} is not a duration; use e.g. 90s, 30m, 24h or 7d")
    number, unit = match.groups()
    return float(number) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def _size(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        size = parse_size(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    if size < 1024:
        raise click.BadParameter(f"{value} is less than 1K")
    return size


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but loopback needs an API key.",
)
@click.option("--port", default=7000, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the job database, uploads and results [default: ~/.local/share/vidmatte/serve].",
)
@click.option(
    "--api-key",
    envvar="VIDMATTE_API_KEY",
    show_envvar=True,
    help=f"Require this key (at least {MIN_KEY_LENGTH} characters) as 'Authorization: Bearer KEY' or "
    "'X-API-Key: KEY'. Prefer the environment variable: a command line is visible to other users.",
)
@click.option(
    "--jobs",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Video jobs run at once (they share the model and the device).",
)
@click.option(
    "--still-workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Stills matted at once."
)
@click.option("--max-upload", default="2G", show_default=True, callback=_size, help="Largest upload (413 above it).")
@click.option(
    "--queue-limit",
    default=100,
    show_default=True,
    type=click.IntRange(1),
    help="Most jobs waiting; more are refused with 429 and Retry-After.",
)
@click.option(
    "--keep",
    default="24h",
    show_default=True,
    callback=_duration,
    help="How long finished jobs and their results are kept.",
)
@click.option(
    "--cors",
    multiple=True,
    metavar="ORIGIN",
    help="Allow web pages of this origin (e.g. https://tool.example) to call the API; repeatable.",
)
@click.option("--webhooks", is_flag=True, help="Let jobs name a webhook_url the server POSTs to when they end.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda", "mps"]))
@click.option(
    "--precision", default="auto", show_default=True, type=click.Choice(PRECISION_CHOICES), help=PRECISION_HELP
)
@click.option(
    "--workers",
    type=click.IntRange(1),
    help="Run video jobs on N Ray workers (needs vidmatte[ray]): long clips split across them.",
)
@click.option("--cluster", metavar="ADDRESS|auto", help="Join this Ray cluster for the workers.")
@click.option("-q", "--quiet", is_flag=True, help="No request log; warnings only.")
def serve(data: Path | None, cors: tuple[str, ...], **flags: Any) -> None:
    """Serve the HTTP API and the web page: POST /api/remove for stills, /api/jobs for clips,
    the page at /, the API's documentation at /docs.

    \b
      vidmatte serve                               http://127.0.0.1:7000/
      VIDMATTE_API_KEY=... vidmatte serve --host 0.0.0.0 --data /srv/vidmatte
    """
    config = ServerConfig(data=data or default_data_dir(), cors=tuple(cors), **flags)
    run(config)


def check_config(config: ServerConfig) -> None:
    """Refuse unsafe or impossible settings before anything is loaded (ServeError)."""
    if config.api_key is not None and len(config.api_key) < MIN_KEY_LENGTH:
        raise ServeError(
            f"the API key is shorter than {MIN_KEY_LENGTH} characters; make one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if not is_loopback(config.host) and config.api_key is None:
        raise ServeError(
            f"binding {config.host} makes the server reachable from other machines; set an API key "
            "(VIDMATTE_API_KEY or --api-key) or bind 127.0.0.1"
        )
    for origin in config.cors:
        if origin == "*" or not re.fullmatch(r"https?://[^/\s]+", origin.rstrip("/")):
            raise ServeError(f"--cors {origin!r}: give an origin such as https://tool.example (no '*', no path)")


def make_matte_function(config: ServerConfig, engine: MattingEngine) -> MatteFunction:
    """How jobs are run. Here: `matte_path` in this process on the shared engine, `--jobs` at a time.

    With `--workers` / `--cluster`, video jobs go to Ray workers instead (one pool for the
    server's life, the same flags as the command line); other uploads stay here. It is called as
    `matte(upload, output, options, progress)`, like `matte_path`, and raising from `progress`
    stops it.
    """
    from .jobs import local_matte

    local = local_matte(engine)
    if config.workers is None and config.cluster is None:
        return local
    import atexit

    from ..distributed.driver import RayPool, Settings, matte_clip
    from ..io.formats import is_image_path
    from ..options import MatteOptions

    workers = config.workers or 1
    pool = RayPool(
        Settings(workers=workers, cluster=config.cluster),
        MatteOptions(device=config.device, precision=config.precision),
    ).__enter__()
    atexit.register(pool.__exit__)
    log.info("%s", pool.described)

    def matte(source: Path, output: str, options: MatteOptions, progress: Any) -> object:
        if is_image_path(source):
            return local(source, output, options, progress)
        scaled = options.with_(workers=workers, cluster=config.cluster)
        return matte_clip(source, output, options=scaled, progress=progress, pool=pool)

    return matte


def run(config: ServerConfig) -> None:
    """Start the server and block until it is stopped (SIGINT/SIGTERM: running jobs re-queued)."""
    check_config(config)
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn
    except ImportError as error:
        raise ServeError(f"vidmatte serve needs {error.name}: pip install 'vidmatte[serve]'") from None
    _setup_logging(config.quiet)
    sock = _bind(config.host, config.port)
    from .store import DataDir, DataLocked, JobStore

    data = DataDir(config.data)
    try:
        data.create()
        data.lock()
    except DataLocked as error:
        sock.close()
        raise ServeError(str(error)) from None
    except OSError as error:
        sock.close()
        raise ServeError(f"cannot use {data.root} as the data folder: {error.strerror or error}") from None
    store = JobStore(data.database)
    try:
        _serve(config, sock, data, store, uvicorn)
    finally:
        store.close()
        data.unlock()
        sock.close()


def _serve(config: ServerConfig, sock: socket.socket, data: Any, store: Any, uvicorn: Any) -> None:
    from ..api import open_engine
    from ..options import MatteOptions
    from ..plan import one_torch_thread
    from .app import Settings, create_app
    from .jobs import JobRunner, Webhooks
    from .stills import Stills

    log.info("loading the model ...")
    one_torch_thread()  # this thread serves requests; the still workers get the cores (plan.stage_threads)
    engine = open_engine(MatteOptions(device=config.device, precision=config.precision))
    device = engine.describe()
    runner = JobRunner(
        store,
        data,
        make_matte_function(config, engine),
        workers=config.jobs,
        keep=config.keep,
        max_attempts=config.max_attempts,
        webhooks=Webhooks(config.api_key) if config.webhooks else None,
    )
    for line in runner.recover():
        log.info(line)
    stills = Stills(engine, workers=config.still_workers, queue=config.still_queue)
    settings = Settings(
        api_key=config.api_key,
        max_upload=config.max_upload,
        queue_limit=config.queue_limit,
        keep=config.keep,
        webhooks=config.webhooks,
        cors=config.cors,
        loopback_only=is_loopback(config.host),
        device=device,
    )
    host, port = sock.getsockname()[:2]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def started() -> None:
        # the line tests and scripts wait for: the model is loaded and requests are accepted
        click.echo(f"vidmatte serve: listening on {url} (model: {device}; data: {data.root})", err=True)
        sys.stderr.flush()

    app = create_app(settings, store=store, data=data, runner=runner, stills=stills, on_started=started)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning" if config.quiet else "info",
            access_log=not config.quiet,
            server_header=False,
            proxy_headers=False,
            ws="none",
            lifespan="on",
            timeout_graceful_shutdown=10,
        )
    )
    server.run(sockets=[sock])


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        reason = "the port is in use" if error.errno == errno.EADDRINUSE else (error.strerror or str(error))
        raise ServeError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s vidmatte: %(message)s", "%H:%M:%S"))
    root = logging.getLogger("vidmatte")
    root.addHandler(handler)
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    root.propagate = False


def main(argv: list[str]) -> None:
    """`vidmatte serve ARGS`: run the command, errors as one line and an exit code."""
    try:
        serve.main(args=argv, prog_name="vidmatte serve", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("vidmatte serve: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except VidmatteError as error:
        click.echo(f"vidmatte serve: error: {error}", err=True)
        sys.exit(error.exit_code)
