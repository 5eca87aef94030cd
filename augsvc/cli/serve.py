"""``augsvc serve``: Settings from the environment, uvicorn in front of ``create_app``."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from augsvc.allocator import retain_freed_memory
from augsvc.config import Settings

KEEP_ALIVE_S = 75  # longer than common load-balancer idle timeouts (60 s), so they close first
GRACEFUL_SHUTDOWN_S = 30  # let in-flight batches finish on SIGTERM (Kubernetes gives 30 s)
# Request line and headers together, where uvicorn parses with h11 (without httptools):
# augsvc's requests carry a few short headers and an API key, so 16 KiB is room to spare,
# and a client cannot make the server buffer an endless header block. Bodies have their
# own limits (AUGSVC_MAX_REQUEST_BYTES and the two read clocks, in augsvc.api.limits).
MAX_HEADER_BYTES = 16 * 1024


def serve(host: str, port: int, log_level: str = "info") -> int:
    """Run until SIGINT/SIGTERM; 2 for bad settings. Port 0 picks a free port, and the
    line printed at start names the real one (the test fixtures rely on it)."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"augsvc: invalid settings (AUGSVC_* environment):\n{exc}", file=sys.stderr)
        return 2
    warn_missing_data_roots(settings)
    from augsvc.api.app import create_app  # torch/kornia import here, after the settings check

    retain_freed_memory()

    try:
        app = create_app(settings)
    except ValueError as exc:
        print(f"augsvc: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        timeout_keep_alive=KEEP_ALIVE_S,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        server_header=False,
    )
    server = uvicorn.Server(config)
    app.state.draining = lambda: server.should_exit  # streams end at a frame boundary
    if threading.current_thread() is threading.main_thread():
        # uvicorn drains on SIGTERM, then re-raises the signal to the handler it found;
        # with the default one the process would die by it (-15 / exit 143) after a
        # clean shutdown. This handler just asks the server to stop, so a drained
        # SIGTERM exits 0, and one arriving before uvicorn takes over still stops it.
        signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    keyed = settings.api_keys is not None and bool(settings.api_keys.get_secret_value().strip())
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(_serve(server, host, keyed))
    return 0 if server.started else 1


def warn_missing_data_roots(settings: Settings) -> list[Path]:
    """Log a warning for each configured data root that is not a folder: every
    registration under it would be refused, and a typo is easier to fix at start than
    from a 403 later. The service still starts (the volume may be mounted later)."""
    missing = [root for root in settings.data_root_paths if not root.is_dir()]
    for root in missing:
        logging.getLogger("augsvc.serve").warning(
            "AUGSVC_DATA_ROOTS names %s, which is not an existing folder: datasets under it"
            " cannot be registered until it exists", root,
        )  # fmt: skip
    return missing


def startup_line(url: str, keyed: bool) -> str:
    """Where to point a browser or curl; with API keys configured the curl needs one."""
    auth = "-H 'Authorization: Bearer <key from AUGSVC_API_KEYS>' " if keyed else ""
    return f"augsvc listening on {url} — try: curl {auth}{url}/v1/ops  (API docs: {url}/docs)"


async def _serve(server: uvicorn.Server, host: str, keyed: bool) -> None:
    announcer = asyncio.create_task(_announce(server, host, keyed))
    try:
        await server.serve()
    finally:
        announcer.cancel()


async def _announce(server: uvicorn.Server, host: str, keyed: bool) -> None:
    """Print where to point a browser or curl, once the socket is really listening."""
    while not server.started:
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1] if server.servers else server.config.port
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    print(startup_line(url, keyed), flush=True)
