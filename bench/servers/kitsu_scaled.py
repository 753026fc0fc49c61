"""A Kitsu whose ``/anime`` list has any number of records, made on the fly from the sandbox's pages.

``python -m bench.servers.kitsu_scaled --records N --config PATH`` starts the real Kitsu simulator
(medium world) on a private port and serves in front of it: ``GET /api/edge/anime`` answers page
``offset`` with the simulator's page at ``offset mod T`` (same query otherwise, so ``include=``,
``fields`` and sorting behave as the simulator does) whose records get the ids ``offset + i + 1``;
``meta.count`` is N and ``links`` point back here. Every other request (OAuth token, other
resources) is passed through. Template pages are cached as bytes, so memory stays flat in N and
nothing of size N is ever held. Prints one JSON line when ready; serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
from aiohttp import web

from pipeline.sandbox.server import start_sandbox, write_config

TEMPLATE_SIZE = "medium"
PREFIX = "/api/edge"
HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


@dataclass
class Scaled:
    """The front server's state: the simulator's root, the record count and cached template pages."""

    upstream: str
    records: int
    session: aiohttp.ClientSession
    self_root: str = ""
    templates: int = 0  # records the simulator's /anime list has for this client
    cache: dict[tuple[Any, ...], bytes] = field(default_factory=dict)

    async def fetch(self, path: str, query: list[tuple[str, str]], headers: dict[str, str]) -> bytes:
        key = (path, tuple(query), headers.get("Authorization", ""))
        cached = self.cache.get(key)
        if cached is None:
            async with self.session.get(self.upstream + path, params=query, headers=headers) as resp:
                resp.raise_for_status()
                cached = self.cache[key] = await resp.read()
        return cached

    async def anime(self, request: web.Request) -> web.Response:
        query = [(k, v) for k, v in request.query.items() if k not in ("page[offset]", "page[limit]")]
        limit = int(request.query.get("page[limit]", "10"))
        offset = int(request.query.get("page[offset]", "0"))
        headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}
        if not self.templates:
            first = orjson.loads(await self.fetch(request.path, [*query, ("page[limit]", "1")], headers))
            self.templates = int(first["meta"]["count"])
        span = max(limit, self.templates - self.templates % limit)
        start = offset % span
        start = min(start, max(0, self.templates - limit))
        page_query = [*query, ("page[limit]", str(limit)), ("page[offset]", str(start))]
        doc = orjson.loads(await self.fetch(request.path, page_query, headers))
        wanted = max(0, min(limit, self.records - offset))
        data = doc["data"][:wanted]
        for i, item in enumerate(data):
            item["id"] = str(offset + i + 1)
            item.get("links", {})["self"] = f"{self.self_root}{PREFIX}/anime/{item['id']}"
            attributes = item.get("attributes", {})
            if "slug" in attributes:
                attributes["slug"] = f"{attributes['slug']}-{offset + i + 1}"
        doc["data"] = data
        doc["meta"] = {**doc.get("meta", {}), "count": self.records}
        doc["links"] = self.links(query, offset, limit)
        return web.Response(body=orjson.dumps(doc), content_type="application/vnd.api+json")

    def links(self, query: list[tuple[str, str]], offset: int, limit: int) -> dict[str, str]:
        def at(page_offset: int) -> str:
            params = [*query, ("page[limit]", str(limit)), ("page[offset]", str(page_offset))]
            return f"{self.self_root}{PREFIX}/anime?{urlencode(params)}"

        last = max(0, (self.records - 1) // limit * limit)
        out = {"first": at(0), "last": at(last)}
        if offset > 0:
            out["prev"] = at(max(0, offset - limit))
        if offset + limit < self.records:
            out["next"] = at(offset + limit)
        return out

    async def passthrough(self, request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        async with self.session.request(
            request.method,
            self.upstream + request.path,
            params=list(request.query.items()),
            headers=headers,
            data=await request.read(),
        ) as resp:
            body = await resp.read()
            out = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_HEADERS}
            out.pop("Content-Encoding", None)
            return web.Response(body=body, status=resp.status, headers=out)


def point_config(path: Path, upstream: str, front: str) -> Path:
    """Rewrite the simulator's config so every URL in it names the front server."""
    path.write_text(path.read_text(encoding="utf-8").replace(upstream, front), encoding="utf-8")
    return path


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with (
        await start_sandbox(TEMPLATE_SIZE, services=("kitsu",)) as sandbox,
        aiohttp.ClientSession(auto_decompress=False) as session,
    ):
        scaled = Scaled(sandbox.roots["kitsu"], args.records, session)
        app = web.Application()
        app.router.add_get(PREFIX + "/anime", scaled.anime)
        app.router.add_route("*", "/{tail:.*}", scaled.passthrough)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            scaled.self_root = f"http://127.0.0.1:{runner.addresses[0][1]}"
            config = point_config(
                write_config(sandbox, args.config), sandbox.roots["kitsu"], scaled.self_root
            )
            ready = {"root": scaled.self_root, "config": str(config), "records": args.records}
            sys.stdout.write(orjson.dumps(ready).decode() + "\n")
            sys.stdout.flush()
            await stop.wait()
        finally:
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.servers.kitsu_scaled")
    parser.add_argument("--records", type=int, required=True, help="records the /anime list has")
    parser.add_argument("--config", required=True, help="where to write the pipeline config")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
