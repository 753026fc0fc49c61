"""End to end: an unthrottled Kitsu anime sync from the sandbox into Postgres, ours vs a dlt ``rest_api``.

The sandbox (large: 80k anime) runs in its own process; each client runs in its own child
process against it, each size into a fresh scratch database (ours: the migrated ``catalog``/
``raw``/``etl`` schemas; dlt: its own dataset schema), so neither side pays for the server or the
other. All three sides send the same query: ``page[limit]=20`` (Kitsu's maximum), ``sort=id`` and
the include and sparse fieldset our connector asks for (``QUERY``, read from
``pipeline.sources.kitsu.ROUTES``), with the same bearer token (so all see the R18 works); dlt and
ours merge on the record id. The fetch-only ceiling reads the same pages 8 in flight and parses
them: the most any client gets from this simulator. Figures: records/s of the sync call itself
(imports and start-up excluded on every side), ours / dlt and ours / ceiling, at each size. The CPU
the sandbox and the PostgreSQL server spend while each child runs is read from their processes
(psutil; a server on another machine is not read), which gives the best share of the ceiling any
schedule could reach with the CPU ours used on this machine's cores.

``BENCH_E2E_SIZES`` lists the sizes (records; ``0`` = the sandbox's whole Kitsu anime set;
default ``20000,0``); ``BENCH_E2E_DLT_RECORDS`` caps dlt at a different count (its rate is then
measured on fewer records); ``BENCH_E2E_REPEATS`` (default 3) runs every side that many times at
each size, each run in a fresh database, and keeps each side's best run (the notes list the paired
ratio of every repetition). At the first size ours also runs once with CPython's default
collector settings (``pipeline.gcpolicy`` off): client CPU before/after. ``python -m bench.e2e
ours|dlt|fetch …`` is a child.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import orjson

from bench.common import (
    BenchServer,
    emit,
    postmaster_pid,
    process_cpu,
    require,
    require_connector,
    row,
    scratch_database,
    server_cpu,
    server_url,
)
from bench.common import run_child as measured_child
from pipeline.log import configure

NAME = "e2e kitsu anime vs dlt"
PAGE = 20
TARGET_RATIO = 5.0  # ours / dlt at every size
TARGET_CEILING = 0.6  # ours / the fetch-only ceiling at every size
TARGET_SCALING = 0.9  # ours/dlt at the largest size / at the smallest
RATE = 1000  # requests per second: "unthrottled" for a local server
IN_FLIGHT = 8
CHILD_TIMEOUT = 600.0
DEFAULT_SIZES = "20000,0"
DEFAULT_REPEATS = 3  # runs of every side at each size: single runs here spread by +-10 %


def our_query() -> dict[str, str]:
    """The anime listing's query as our connector sends it (page parameters aside)."""
    from pipeline.sources.kitsu import ROUTES

    route = ROUTES["anime"]
    params = {"sort": "id"}
    if route.include:
        params["include"] = route.include
    params |= {f"fields[{kind}]": "slug" for kind in route.slim}
    return params


QUERY = our_query()


# -- children ---------------------------------------------------------------------------------------
async def sync_ours(config: str, url: str, limit: int) -> dict[str, Any]:
    """Our runner: full sync of kitsu/anime with a high rate; raw landing + unified rows + checkpoints.

    Run inside ``gcpolicy.batch_gc`` as ``pipeline sync`` does, unless ``BENCH_E2E_GC=default``.
    """
    from pipeline import db, sources, tables
    from pipeline.gcpolicy import batch_gc
    from pipeline.log import configure
    from pipeline.runner import run_sync
    from pipeline.settings import load_settings

    configure("warning")
    tables.registered()  # imports the unified models (sqlmodel): imports are excluded on every side
    settings = load_settings(config)
    kitsu = settings.sources["kitsu"].model_copy(
        update={
            "rate": settings.sources["kitsu"].rate.model_copy(update={"requests": RATE, "per_seconds": 1.0}),
            "max_in_flight": IN_FLIGHT,
            "resources": ("anime",),
            "max_pages": -(-limit // PAGE) if limit else None,
        }
    )
    settings = settings.model_copy(update={"sources": {"kitsu": kitsu}})
    async with db.pool_for(url, min_size=1, max_size=4) as pool:
        gc_context: Any = (
            contextlib.nullcontext() if os.environ.get("BENCH_E2E_GC") == "default" else batch_gc()
        )
        with gc_context:
            started, cpu = time.perf_counter(), time.process_time()
            summary = await run_sync(
                settings,
                pool,
                sources=["kitsu"],
                resources=["anime"],
                full=True,
                stream_factory=sources.build_stream,
                client_factory=sources.open_client,
            )
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        rows = await pool.fetchval("SELECT count(*) FROM catalog.media WHERE source = 'kitsu'")
        raw = await pool.fetchval("SELECT count(*) FROM raw.records WHERE source = 'kitsu'")
    stream = summary.streams[0]
    return {
        "status": stream.status,
        "error": stream.error,
        "records": stream.records,
        "rows": rows,
        "raw": raw,
        "requests": stream.requests,
        "seconds": seconds,
        "cpu_seconds": cpu,
    }


def sync_dlt(base_url: str, token: str, url: str, limit: int) -> dict[str, Any]:
    """dlt ``rest_api`` with its defaults: offset paginator on ``page[offset]``, merge on ``id``."""
    import dlt
    from dlt.sources.rest_api import rest_api_source

    paginator: dict[str, Any] = {
        "type": "offset",
        "limit": PAGE,
        "offset_param": "page[offset]",
        "limit_param": "page[limit]",
        "total_path": "meta.count",
    }
    if limit:
        paginator["maximum_offset"] = limit
    source = rest_api_source(
        {
            "client": {
                "base_url": base_url + "/",
                "auth": {"type": "bearer", "token": token},
                "paginator": paginator,
            },
            "resources": [
                {
                    "name": "anime",
                    "endpoint": {
                        "path": "anime",
                        "data_selector": "data",
                        "params": dict(QUERY),  # the request ours sends
                    },
                    "primary_key": "id",
                    "write_disposition": "merge",
                }
            ],
        }
    )
    with tempfile.TemporaryDirectory(prefix="bench-dlt-") as work:
        pipeline = dlt.pipeline(
            pipeline_name="bench_kitsu",
            destination=dlt.destinations.postgres(credentials=dlt_credentials(url)),
            dataset_name="dlt_kitsu",
            pipelines_dir=work,
        )
        started, cpu = time.perf_counter(), time.process_time()
        pipeline.run(source)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        with pipeline.sql_client() as client:
            rows = client.execute_sql("SELECT count(*) FROM dlt_kitsu.anime")[0][0]
    return {"status": "succeeded", "records": rows, "rows": rows, "seconds": seconds, "cpu_seconds": cpu}


def dlt_credentials(url: str) -> dict[str, Any]:
    """dlt's credential fields for a URL; the embedded server's ``?host=/socket/dir`` form included."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return {
        "database": parts.path.lstrip("/"),
        "username": parts.username or "postgres",
        "password": parts.password or "",
        "host": quote(query.get("host", [parts.hostname or "127.0.0.1"])[0], safe=""),  # libpq decodes it
        "port": parts.port or 5432,
    }


async def fetch_only(base_url: str, token: str, limit: int) -> dict[str, Any]:
    """The server's ceiling: the same pages at the same width, parsed but not transformed or stored."""
    import aiohttp

    pages = -(-limit // PAGE)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.api+json"}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(pages):
        queue.put_nowait(n)
    records = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal records
        while not queue.empty():
            n = queue.get_nowait()
            params = {"page[limit]": str(PAGE), "page[offset]": str(n * PAGE), **QUERY}
            async with session.get(base_url + "/anime", params=params, headers=headers) as resp:
                records += len(orjson.loads(await resp.read())["data"])

    started, cpu = time.perf_counter(), time.process_time()
    async with aiohttp.ClientSession() as session, asyncio.TaskGroup() as tasks:
        for _ in range(IN_FLIGHT):
            tasks.create_task(worker(session))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"status": "succeeded", "records": records, "seconds": seconds, "cpu_seconds": cpu}


def child(argv: list[str]) -> None:
    side, *args = argv
    if side == "ours":
        config, url, limit = args
        emit(asyncio.run(sync_ours(config, url, int(limit))))
    elif side == "dlt":
        base_url, url, limit = args
        emit(sync_dlt(base_url, os.environ["BENCH_E2E_TOKEN"], url, int(limit)))
    elif side == "fetch":
        base_url, limit = args
        emit(asyncio.run(fetch_only(base_url, os.environ["BENCH_E2E_TOKEN"], int(limit))))
    else:
        raise SystemExit(f"unknown side {side!r}: use 'ours' or 'dlt'")


# -- parent -----------------------------------------------------------------------------------------
async def fetch_token(root: str, config: str) -> str:
    """A password-grant token from the sandbox's Kitsu OAuth endpoint, with the config's credentials."""
    import aiohttp

    from pipeline.settings import load_settings

    auth = load_settings(config).sources["kitsu"].auth
    form = {
        "grant_type": "password",
        "username": getattr(auth, "username", ""),
        "password": auth.password.get_secret_value() if hasattr(auth, "password") else "",
    }
    async with aiohttp.ClientSession() as session, session.post(root + "/api/oauth/token", data=form) as resp:
        resp.raise_for_status()
        body = orjson.loads(await resp.read())
    return str(body["access_token"])


async def warm_up(base_url: str, token: str) -> int:
    """One authenticated page first (the simulator builds its R18-inclusive view on first use);
    returns the listing's ``meta.count``: the whole set."""
    import aiohttp

    params = {"page[limit]": str(PAGE), **QUERY}
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(base_url + "/anime", params=params, headers=headers) as resp,
    ):
        resp.raise_for_status()
        return int(orjson.loads(await resp.read())["meta"]["count"])


async def measure(
    server: BenchServer, sizes: list[int], dlt_cap: int | None, repeats: int
) -> list[dict[str, Any]]:
    """Ours, dlt and the ceiling ``repeats`` times at each size (0 = the whole set), the best run of
    each side kept; ours once more with default GC at the first size."""
    config, base, root = server.info["config"], server.info["urls"]["kitsu"], server.info["roots"]["kitsu"]
    token = await fetch_token(root, config)
    total = await warm_up(base, token)
    secret = {"BENCH_E2E_TOKEN": token}  # not on the command line, where ps and errors show it
    assert server.proc is not None
    sandbox, postmaster = server.proc.pid, await postmaster_pid(server_url())

    async def metered(args: list[str], env: dict[str, str] | None = None) -> Any:
        """The child, plus the CPU the sandbox and PostgreSQL spent while it ran (None: unreadable)."""
        before = process_cpu(sandbox), server_cpu(postmaster)
        result = await asyncio.to_thread(measured_child, "bench.e2e", args, CHILD_TIMEOUT, env)
        after = process_cpu(sandbox), server_cpu(postmaster)
        keys = ("sandbox_cpu_seconds", "postgres_cpu_seconds")
        for key, start, end in zip(keys, before, after, strict=True):
            result[key] = end - start if start is not None and end is not None else None
        return result

    out = []
    for n, size in enumerate(sizes):
        records = min(size, total) if size else total
        dlt_records = min(records, dlt_cap) if dlt_cap else records
        result: dict[str, Any] = {"size": records, "whole": records == total}
        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "dlt": [], "ceiling": []}
        for _ in range(repeats):  # every side as often, each run in a fresh database: best of each
            async with scratch_database("bench_e2e") as url:
                runs["ours"].append(await metered(["ours", config, url, str(records)]))
            async with scratch_database("bench_e2e") as url:
                runs["dlt"].append(await metered(["dlt", base, url, str(dlt_records)], secret))
            runs["ceiling"].append(await metered(["fetch", base, str(records)], secret))
        for side, done in runs.items():
            result[side] = min(done, key=lambda r: r["seconds"] / max(r["records"], 1))
        result["paired"] = [
            (o["records"] / o["seconds"]) / (d["records"] / d["seconds"])
            for o, d in zip(runs["ours"], runs["dlt"], strict=True)
        ]
        if n == 0:  # the same sync with CPython's default collector: client CPU before/after
            async with scratch_database("bench_e2e") as url:
                result["ours_default_gc"] = await metered(
                    ["ours", config, url, str(records)], {"BENCH_E2E_GC": "default"}
                )
        out.append(result)
    return out


def main() -> list[dict[str, Any]]:
    require("dlt", "install the benchmark extra: .venv/bin/pip install 'dlt[postgres]>=1.0'")
    require_connector("kitsu")
    configure("warning")
    sizes = [int(x) for x in os.environ.get("BENCH_E2E_SIZES", DEFAULT_SIZES).split(",") if x.strip()]
    dlt_cap = int(os.environ.get("BENCH_E2E_DLT_RECORDS", "0")) or None
    repeats = max(1, int(os.environ.get("BENCH_E2E_REPEATS", str(DEFAULT_REPEATS))))
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as work:
        config = str(Path(work) / "sandbox.toml")
        args = ["--size", "large", "--services", "kitsu", "--config", config]
        with BenchServer("sandbox", args) as server:
            results = asyncio.run(measure(server, sizes, dlt_cap, repeats))
    rows: list[dict[str, Any]] = []
    ratios = []
    for result in results:
        size_rows, ratio = size_figures(result)
        rows += size_rows
        ratios.append((result["size"], ratio))
    if len(ratios) > 1:
        (small, first), (large, last) = ratios[0], ratios[-1]
        scaling = last / first
        rows.append(
            row(
                NAME,
                "ours/dlt at the largest size / at the smallest",
                round(scaling, 3),
                f">= {TARGET_SCALING}",
                scaling >= TARGET_SCALING,
                f"{last:.2f}x at {large:,} records, {first:.2f}x at {small:,}",
            )
        )
    return rows


def size_figures(result: dict[str, Any]) -> tuple[list[dict[str, Any]], float]:
    ours, theirs, ceiling = result["ours"], result["dlt"], result["ceiling"]
    capped = not result["whole"]  # a page cap below the whole set ends the scan "incomplete"
    if ours["status"] != "succeeded" and not (capped and ours["status"] == "incomplete"):
        raise RuntimeError(f"our kitsu/anime sync ended {ours['status']}: {ours.get('error')}")
    size = f"{result['size']:,}" + (" (whole set)" if result["whole"] else "")
    name = f"{NAME}, {size}"
    ours_rate = ours["records"] / ours["seconds"]
    dlt_rate = theirs["records"] / theirs["seconds"]
    ratio = ours_rate / dlt_rate
    ceiling_rate = ceiling["records"] / ceiling["seconds"]
    share = ours_rate / ceiling_rate
    ours_note = (
        f"ours: {ours['records']:,} records in {ours['seconds']:.1f} s ({_cpu(ours)}), "
        f"{ours['requests']:,} requests, "
        f"rate {RATE}/s, {IN_FLIGHT} in flight; writes raw.records ({ours['raw']:,}) + catalog rows "
        f"({ours['rows']:,} media) + links + checkpoints; peak RSS {ours['peak_rss_mb']:.0f} MB"
    )
    dlt_note = (
        f"dlt {_dlt_version()}: rest_api offset paginator, merge on id, defaults otherwise "
        f"(sequential pages, nested tables); {theirs['records']:,} records in {theirs['seconds']:.1f} s "
        f"({_cpu(theirs)}); peak RSS {theirs['peak_rss_mb']:.0f} MB"
    )
    query = "&".join(f"{k}={v}" for k, v in QUERY.items())
    rows = [
        row(name, "ours records/s", round(ours_rate, 1), "reference", True, ours_note),
        row(name, "dlt records/s", round(dlt_rate, 1), "reference", True, dlt_note),
        row(
            name,
            "ours / dlt records/s",
            round(ratio, 2),
            f">= {TARGET_RATIO:.0f}x",
            ratio >= TARGET_RATIO,
            ratio_note(ours, ours_rate, dlt_rate, ceiling_rate, result["paired"]),
        ),
        row(
            name,
            "server ceiling records/s (fetch only)",
            round(ceiling_rate, 1),
            "reference",
            True,
            f"the same {ceiling['records']:,} records, same query ({query}, page[limit]={PAGE}), "
            f"fetched {IN_FLIGHT} in flight and parsed, nothing stored; dlt reaches "
            f"{dlt_rate / ceiling_rate:.0%} of it",
        ),
        row(
            name,
            "ours / fetch-only ceiling",
            round(share, 3),
            f">= {TARGET_CEILING}",
            share >= TARGET_CEILING,
            limit_note(ours, ours_rate, ceiling_rate),
        ),
    ]
    bound = machine_bound(ours, ceiling, ceiling_rate)
    if bound is not None:
        best, note = bound
        metric = "ours / ceiling at best on this machine's CPU"
        rows.append(row(name, metric, round(best, 3), "reference", True, note))
    default_gc = result.get("ours_default_gc")
    if default_gc is not None:
        tuned_cpu, plain_cpu = ours["cpu_seconds"], default_gc["cpu_seconds"]
        plain_rate = default_gc["records"] / default_gc["seconds"]
        rows.append(
            row(
                name,
                "client CPU, batch GC / default GC",
                round(tuned_cpu / plain_cpu, 3),
                "< 1",
                tuned_cpu < plain_cpu,
                f"gcpolicy.batch_gc: {tuned_cpu:.1f} s CPU, {ours_rate:,.0f} records/s; CPython defaults: "
                f"{plain_cpu:.1f} s CPU, {plain_rate:,.0f} records/s (same sync, fresh database)",
            )
        )
    return rows, ratio


def machine_bound(
    ours: dict[str, Any], ceiling: dict[str, Any], ceiling_rate: float
) -> tuple[float, str] | None:
    """The best share of the ceiling any schedule of ours could reach with the CPU its three processes
    used: all of it spread over every core, and never less than our own single-threaded client's CPU."""
    server, postgres = ours.get("sandbox_cpu_seconds"), ours.get("postgres_cpu_seconds")
    if server is None or postgres is None:
        return None  # PostgreSQL on another machine, or its processes not readable from here
    cores = _cores()
    client = ours["cpu_seconds"]
    total = client + server + postgres
    fastest = max(total / cores, client)
    best = ours["records"] / fastest / ceiling_rate
    fetch = ceiling.get("sandbox_cpu_seconds")
    note = (
        f"ours used {total:.1f} s of CPU for {ours['records']:,} records: client {client:.1f} s + sandbox "
        f"{server:.1f} s + PostgreSQL {postgres:.1f} s; on {cores} cores no schedule ends before "
        f"{fastest:.1f} s (it took {ours['seconds']:.1f} s)"
    )
    if fetch is not None:
        note += (
            f"; the fetch-only ceiling used sandbox {fetch:.1f} s + client {ceiling['cpu_seconds']:.1f} s "
            f"in {ceiling['seconds']:.1f} s"
        )
    return best, note


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _cpu(side: dict[str, Any]) -> str:
    return f"client CPU {side['cpu_seconds']:.1f} s"


def ratio_note(
    ours: dict[str, Any], ours_rate: float, dlt_rate: float, ceiling_rate: float, paired: list[float]
) -> str:
    note = (
        "same sandbox process, same Postgres, same token, query and page size; each client in its own "
        "process, each into a fresh database"
    )
    if len(paired) > 1:
        note += (
            f"; best of {len(paired)} runs per side (the ceiling too); paired ratio per repetition "
            + ", ".join(f"{r:.2f}" for r in paired)
        )
    if ceiling_rate / dlt_rate < TARGET_RATIO:
        note += (
            f"; the simulator itself serves at most {ceiling_rate / dlt_rate:.1f}x dlt's rate (fetch-only "
            "ceiling below), so this target cannot be met against it"
        )
    return note


def limit_note(ours: dict[str, Any], ours_rate: float, ceiling_rate: float) -> str:
    """What bounds our side: the simulator's own throughput, our CPU, or waiting on Postgres."""
    waiting = 1 - ours["cpu_seconds"] / ours["seconds"]
    share = ours_rate / ceiling_rate
    if share > 0.6:
        return (
            f"ours runs at {share:.0%} of what the simulator can serve at all (a single Python process "
            "rendering JSON:API with includes): the target needs a faster server than the sandbox, "
            "dlt fetches one page at a time so it is bound by latency instead"
        )
    server, postgres = ours.get("sandbox_cpu_seconds"), ours.get("postgres_cpu_seconds")
    if server is not None and postgres is not None:
        cores = _cores()
        busy = (ours["cpu_seconds"] + server + postgres) / (cores * ours["seconds"])
        return (
            f"client, sandbox and PostgreSQL share this machine's {cores} cores and kept them {busy:.0%} "
            f"busy (our client {1 - waiting:.0%}); the row below gives the best share that CPU allows"
        )
    if waiting > 0.5:
        return f"ours spends {waiting:.0%} of its time waiting on the server or Postgres, not computing"
    return f"ours is bound by its own CPU ({1 - waiting:.0%} busy)"


def _dlt_version() -> str:
    import dlt

    return str(dlt.__version__)


if __name__ == "__main__":
    child(sys.argv[1:])
