"""`baas serve`: resolve config once, start the embedded database if needed, then serve with granian.

granian's WSGI server was chosen by measurement: on a 2-core machine a Flask view doing one pymongo find_one
cost 0.36 ms of server CPU per request under granian against 0.81 ms under gunicorn's gthread worker.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

from baas import runtime
from baas.config import ConfigError
from baas.observability.metrics import prepare_multiprocess_dir
from baas.wsgi import MAIN_PID_ENV, RESOLVED_CONFIG_ENV

log = logging.getLogger("baas.server")

# granian exits when a worker dies within seconds of being (re)spawned, taking the whole server down for good.
# baas starts it again after these pauses instead, longer each time while the crashes go on.
CRASH_LOOP_PAUSES = (1.0, 2.0, 5.0, 10.0, 30.0)
CRASH_LOOP_FORGOTTEN_AFTER = 60.0  # seconds of serving after which the pauses start again from the first


@contextmanager
def data_dir_lock(config: dict):
    """One server per data folder: two embedded databases on the same files would corrupt them."""
    if config["mongodb"]["uri"]:
        yield
        return
    folder = runtime.data_dir(config)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = open(folder / "baas.lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(f"another baas server is already using the data folder {folder}") from None
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def banner(config: dict, report: runtime.BootstrapReport, embedded: bool, echo=print) -> None:
    base = config["server"]["public_url"] or f"http://{config['server']['host']}:{config['server']['port']}"
    echo(f"baas is serving on {base}")
    echo(f"  client API  {base}/v1     admin API  {base}/admin/v1")
    echo(f"  API docs    {base}/docs   OpenAPI    {base}/openapi.json")
    s3 = config["storage"]["s3"]
    if embedded and s3["endpoint"]:
        echo(f"  data        {config['data_dir']} (embedded database; files in S3 bucket {s3['bucket']} "
             f"at {s3['endpoint']})")
    elif embedded:
        echo(f"  data        {config['data_dir']} (embedded database and local files)")
    if report.first_start:
        echo("")
        echo(f"First start: created the project '{report.project_id}'. These are shown only now; keys are stored")
        echo("hashed and cannot be shown again:")
        echo(f"  client key   {report.client_key}")
        echo(f"  server key   {report.server_key}")
        if report.admin_token:
            echo(f"  admin token  {report.admin_token}")
        else:
            echo("  admin token  (the one given in config or BAAS_ADMIN_TOKEN)")
        echo("")
        echo(f"Try: curl -H 'X-API-Key: {report.client_key}' {base}/v1/auth/anonymous -X POST")
    elif report.admin_token:
        echo("")
        echo(f"New admin token (all earlier ones are revoked): {report.admin_token}")
    else:
        echo("")
        echo("Make new keys with:  baas keys create default --kind client   (or --kind server)")
        echo("The admin token was printed at the first start; lost it? restart with --reset-admin-token.")
    sys.stdout.flush()


def check_port_free(host: str, port: int) -> None:
    """Refuse a port another server listens on: granian binds with SO_REUSEPORT, so a second server there would
    silently share its traffic.

    The probe binds with SO_REUSEADDR, as granian does, so connections of a server that just stopped (TIME-WAIT)
    do not count as busy; only a live listener does.
    """
    import socket

    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} (config key 'server.port'): {exc.strerror}") from None


def serve(config: dict, *, dev: bool = False, reset_admin_token: bool = False, echo=print) -> None:
    from baas import create_app

    check_port_free(config["server"]["host"], config["server"]["port"])
    with data_dir_lock(config):
        resolved, embedded = runtime.resolve(config)
        try:
            if not dev:
                # Before the first app: prometheus_client chooses per-process files at import (see metrics.py).
                prepare_multiprocess_dir(resolved)
            app = create_app(resolved)
            svc = app.extensions["baas"]
            runtime.check_services(svc)
            report = runtime.bootstrap(svc, reset_admin_token=reset_admin_token)
            banner(resolved, report, embedded is not None, echo)
            host, port = resolved["server"]["host"], resolved["server"]["port"]
            if dev:
                app.run(host=host, port=port, debug=False, use_reloader=False, threaded=True)
                return
            svc.close()
            background = start_background_work(resolved, embedded is not None)
            try:
                _serve_granian(resolved, host, port)
            finally:
                if background is not None:
                    background.stop()
        finally:
            if embedded is not None:
                embedded.stop()


def start_background_work(config: dict, embedded: bool):
    """Run the background runners in this process when `worker.run_in_serve` says so (see baas.worker)."""
    mode = config["worker"]["run_in_serve"]
    if mode == "never" or (mode == "auto" and not embedded):
        return None
    from baas import create_app
    from baas.worker.runner import BackgroundWork, collect_runners

    app = create_app(config)  # its own clients: granian's workers are separate processes
    return BackgroundWork(collect_runners(app.extensions["baas"])).start()


def _serve_granian(config: dict, host: str, port: int) -> None:
    os.environ[RESOLVED_CONFIG_ENV] = json.dumps(config)
    os.environ[MAIN_PID_ENV] = str(os.getpid())
    crash_loops = 0
    while True:
        server = _granian(config, host, port)
        started = time.monotonic()
        try:
            server.serve()
            return
        except SystemExit as exc:
            # granian exits 1 after a crash loop of its workers, also when it was stopped while one died. (Its
            # stop flag missing, in some other granian release, counts as a stop: the server exits, as it did.)
            if exc.code in (0, None) or getattr(server, "interrupt_signal", True):
                raise
        if time.monotonic() - started > CRASH_LOOP_FORGOTTEN_AFTER:
            crash_loops = 0
        pause = CRASH_LOOP_PAUSES[min(crash_loops, len(CRASH_LOOP_PAUSES) - 1)]
        crash_loops += 1
        log.error("the server's workers kept dying as soon as they started; starting them again in %.0f s", pause)
        if not _pause_unless_stopped(pause):
            return


def _pause_unless_stopped(seconds: float) -> bool:
    """Sleep `seconds`; False at once if SIGINT or SIGTERM arrives meanwhile (the server is being stopped)."""
    stopped = threading.Event()
    previous = {number: signal.signal(number, lambda *_: stopped.set()) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        return not stopped.wait(seconds)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _granian(config: dict, host: str, port: int):
    from granian import Granian
    from granian.constants import Interfaces

    return Granian(
        "baas.wsgi:app_from_env",
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=config["server"]["workers"],
        blocking_threads=config["server"]["threads"],
        factory=True,
        log_access=False,
        # A worker that dies is replaced while the others keep serving (after a crash loop granian exits, and
        # _serve_granian starts it again).
        respawn_failed_workers=True,
        # A stop never waits on a worker for ever: past this it is killed, so Ctrl-C always ends the server.
        workers_kill_timeout=config["server"]["shutdown_timeout_seconds"],
    )
