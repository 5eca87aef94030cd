"""``augsvc serve``: Settings from the environment, uvicorn in front of ``create_app``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from augsvc.allocator import retain_freed_memory
from augsvc.config import Settings, settings_problems, unknown_variables

log = logging.getLogger("augsvc.serve")

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
    settings = load_settings()
    if settings is None:
        return 2
    warn_missing_data_roots(settings)
    if not check_redis(settings):
        return 2
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


def load_settings() -> Settings | None:
    """Settings from the environment, or None once every bad variable has been named on
    stderr, one line each (its name, what is wrong, the form it takes). Variables that
    are no setting are named in a warning, with the setting they were probably meant as."""
    for warning in unknown_variables(os.environ):
        log.warning("%s", warning)
    try:
        return Settings()
    except ValidationError as exc:
        print("augsvc: invalid settings (AUGSVC_* environment):", file=sys.stderr)
        for line in settings_problems(exc, os.environ):
            print(f"  {line}", file=sys.stderr)
        return None


def check_redis(settings: Settings) -> bool:
    """False (after saying why) when AUGSVC_REDIS_URL cannot be a Redis client's URL.

    An unreachable Redis is only a warning: the service starts, answers 503 for what
    needs the store and reconnects by itself when Redis comes (it may start after us).
    Said here because nothing else would say it until the first request failed."""
    if settings.redis_url is None:
        return True
    from redis.exceptions import RedisError

    from augsvc.errors import StoreUnavailable
    from augsvc.store import open_recipe_store

    try:
        store = open_recipe_store(settings)
    except ValueError as exc:  # redis-py's own reading of the URL (its query arguments)
        print(f"augsvc: invalid settings (AUGSVC_* environment):\n  AUGSVC_REDIS_URL: {exc}",
              file=sys.stderr)  # fmt: skip
        return False
    try:
        asyncio.run(_ping(store))
    except (StoreUnavailable, RedisError) as exc:
        reason = exc.__cause__ or exc
        log.warning(
            "Redis at %s (AUGSVC_REDIS_URL) is unreachable at start (%s): recipes and"
            " datasets answer 503 store-unavailable, and /readyz 503, until it answers",
            settings.redis_location, reason,
        )  # fmt: skip
    return True


async def _ping(store) -> None:
    try:
        await store.ping()
    finally:
        await store.close()


def warn_missing_data_roots(settings: Settings) -> list[Path]:
    """Log a warning for each configured data root that is not a folder: every
    registration under it would be refused, and a typo is easier to fix at start than
    from a 403 later. The service still starts (the volume may be mounted later)."""
    missing = [root for root in settings.data_root_paths if not root.is_dir()]
    for root in missing:
        log.warning(
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
