"""Where the server's CPU goes on one request path: cProfile over the WSGI app, no HTTP server, no load generator.

Builds the app exactly as `baas serve` does (embedded nx-27017 in a temporary data folder, bootstrap, the same
config), seeds a few documents, then calls the WSGI callable directly in a loop with a prepared environ, so the
profile shows baas + Flask + pymongo only (granian's share is what documents.py adds on top).

    python benchmarks/profile_app.py get              # GET by id, 3000 requests, top 30 by own time
    python benchmarks/profile_app.py project --requests 5000 --sort cumulative --top 40
    python benchmarks/profile_app.py query --out /tmp/query.prof     # for snakeviz / pstats later
    BAAS_RATE_LIMITS_ENABLED=false python benchmarks/profile_app.py get   # BAAS_* variables configure the app
    python benchmarks/profile_app.py get --compare --requests 10000   # baas beside the bare view, no profiler
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse

from werkzeug.test import EnvironBuilder

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from documents import (COLLECTION_RULES, GROUPS, INDEXES, SERVER_ENV_DEFAULTS, document_for,  # noqa: E402
                       query_path)

PATHS = ("healthz", "project", "get", "create", "query", "query_count")


def _call(app, environ: dict, body: bytes | None) -> int:
    env = dict(environ)
    if body is not None:
        env["wsgi.input"] = io.BytesIO(body)
    status_holder = []

    def start_response(status, headers, exc_info=None):
        status_holder.append(status)

    for chunk in app(env, start_response):
        pass
    return int(status_holder[0].split()[0])


def _floor_app(app, embedded, report, name: str, path: str, ids: list):
    """floor_app.py on the same database and collection, and its path for the same request."""
    if name not in ("get", "create", "query"):
        raise SystemExit("--floor has views for get, create and query only")
    if embedded is None:
        raise SystemExit("--floor needs the embedded database")
    import floor_app

    project_id = app.extensions["baas"].keys.authenticate(report.client_key)[0].id
    os.environ["BAAS_FLOOR_MONGODB_URI"] = embedded.uri
    os.environ["BAAS_FLOOR_DATABASE"] = app.extensions["baas"].mongo.project_db_name(project_id)
    floor_path = {"get": f"/floor/documents/{urllib.parse.quote(ids[len(ids) // 2])}" if ids else "",
                  "create": "/floor/documents", "query": f"/floor/documents?group={7 % GROUPS}"}[name]
    return floor_app.create_app(), floor_path, None


def _environ(path: str, method: str, key: str | None, body: bytes | None) -> dict:
    split = urllib.parse.urlsplit(path)
    return EnvironBuilder(path=split.path, query_string=split.query, method=method,
                          headers={**({"X-API-Key": key} if key else {}), "Accept": "application/json",
                                   **({"Content-Type": "application/json"} if body else {})},
                          data=body or None, base_url="http://127.0.0.1:8000").get_environ()


def _compare(baas_app, baas_environ, floor_app, floor_environ, body, expected, args) -> None:
    """baas and the bare view in alternating blocks in this one process: both see the same neighbours, so the
    median of the per-block differences holds still on a shared machine where either figure alone moves."""
    block = 250
    for _ in range(200):
        _call(baas_app, baas_environ, body)
    baas_ms, floor_ms = [], []
    for _ in range(max(1, args.requests // block)):
        for app, environ, out in ((baas_app, baas_environ, baas_ms), (floor_app, floor_environ, floor_ms)):
            started = time.process_time()
            bad = sum(_call(app, environ, body) != expected for _ in range(block))
            out.append((time.process_time() - started) * 1000 / block)
            if bad:
                raise SystemExit(f"{bad} of {block} requests to {environ['PATH_INFO']} did not answer "
                                 f"{expected} (last: {_call(app, environ, body)})")
    differences = sorted(b - f for b, f in zip(baas_ms, floor_ms))
    quartiles = statistics.quantiles(differences, n=4) if len(differences) > 1 else differences * 3
    print(f"{args.path}: baas {statistics.median(baas_ms):.3f} ms, floor {statistics.median(floor_ms):.3f} ms "
          f"app CPU/request in-process; baas - floor median {statistics.median(differences):+.3f} ms "
          f"(quartiles {quartiles[0]:+.3f} .. {quartiles[2]:+.3f}) over {len(differences)} block pairs of {block}")


def main(argv=None) -> int:
    import random

    from baas import config as config_module, create_app, runtime

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", choices=PATHS)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--docs", type=int, default=1000, help="documents to seed first")
    parser.add_argument("--sort", default="tottime", choices=("tottime", "cumulative"))
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", help="also dump the raw profile here (pstats format)")
    parser.add_argument("--compare", action="store_true",
                        help="no profile: alternate baas and the bare view of floor_app.py in blocks, print the "
                             "median difference of app CPU per request")
    parser.add_argument("--floor", action="store_true",
                        help="profile the bare Flask view of floor_app.py for the same path instead of baas")
    args = parser.parse_args(argv)

    # The server documents.py measures: its rate limit lifted (the limiter still runs), else most of a profile of
    # 10,000 requests from one key would be 429 answers.
    for name, value in SERVER_ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    folder = tempfile.mkdtemp(prefix="baas-profile-")
    embedded = None
    try:
        config, embedded = runtime.resolve(config_module.load(
            None, env={k: v for k, v in os.environ.items() if k.startswith("BAAS_") and k != "BAAS_CONFIG"},
            overrides={"data_dir": folder}))
        app = create_app(config)
        report = runtime.bootstrap(app.extensions["baas"])
        key = report.client_key
        client = app.test_client()
        headers = {"X-API-Key": report.server_key}
        collection = "bench"
        wants_docs = args.path not in ("healthz", "project")
        ids = []
        if wants_docs:
            response = client.put(f"/v1/collections/{collection}", headers=headers,
                                  json={"indexes": INDEXES, "rules": COLLECTION_RULES})
            assert response.status_code in (200, 201), response.get_data(as_text=True)
            rng = random.Random(7)
            for i in range(args.docs):
                response = client.post(f"/v1/collections/{collection}/documents", headers=headers,
                                       json=document_for(i, rng))
                assert response.status_code == 201, response.get_data(as_text=True)
                ids.append(response.get_json()["_id"])

        method, body, expected = "GET", None, 200
        if args.path == "healthz":
            path = "/healthz"
        elif args.path == "project":
            path = "/v1/project"
        elif args.path == "get":
            path = f"/v1/collections/{collection}/documents/{urllib.parse.quote(ids[len(ids) // 2])}"
        elif args.path == "create":
            method, path, expected = "POST", f"/v1/collections/{collection}/documents", 201
            body = json.dumps(document_for(123, random.Random(3))).encode()
        else:
            path = query_path(collection, 7 % GROUPS, args.path == "query_count")
        baas_app, baas_environ = app, _environ(path, method, key, body)
        if args.floor or args.compare:
            floor, floor_path, floor_key = _floor_app(app, embedded, report, args.path, path, ids)
            floor_environ = _environ(floor_path, method, floor_key, body)
            if args.floor:
                app, path, environ = floor, floor_path, floor_environ
        if not args.floor:
            app, environ = baas_app, baas_environ
        for _ in range(200):  # warm caches (key lookup, compiled rules) the way a running server has them
            status = _call(app, environ, body)
        if status != expected:
            raise SystemExit(f"{method} {path} answered {status}, expected {expected}")
        if args.compare:
            _compare(baas_app, baas_environ, floor, floor_environ, body, expected, args)
            return 0

        def db_ticks() -> int:
            with open(f"/proc/{embedded.process.pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])

        started_cpu, started_db = time.process_time(), db_ticks() if embedded else 0
        unexpected = sum(_call(app, environ, body) != expected for _ in range(args.requests))
        if unexpected:
            raise SystemExit(f"{unexpected} of {args.requests} requests did not answer {expected}")
        app_cpu = (time.process_time() - started_cpu) * 1000 / args.requests
        db_cpu = ((db_ticks() - started_db) / os.sysconf("SC_CLK_TCK") * 1000 / args.requests) if embedded else 0
        print(f"{method} {path}: {app_cpu:.3f} ms app CPU/request in-process (no HTTP server), "
              f"{db_cpu:.3f} ms db CPU/request, over {args.requests} requests without the profiler")

        # CPU time, not wall time: waiting for the database is not this process's cost (db CPU is above).
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for _ in range(args.requests):
            _call(app, environ, body)
        profiler.disable()
        stats = pstats.Stats(profiler)
        if args.out:
            stats.dump_stats(args.out)
        stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)
        return 0
    finally:
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
