"""Zou end to end: the sandbox studio, the real runner and PostgreSQL; full sync, events, auth, studios."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from pipeline.connectors import connector_spec
from pipeline.runner import run_sync
from pipeline.runs import RunSummary
from pipeline.sandbox import zou as zou_sim
from pipeline.sandbox.server import Sandbox, source_settings, start_sandbox
from pipeline.sandbox.zou_models import Event as zou_sim_event
from pipeline.sandbox.zou_store import model_for
from pipeline.settings import Settings, SourceSettings, parse_settings
from pipeline.sources import build_stream, open_client
from pipeline.sources.zou import ZouStream
from pipeline.streams import Page

pytestmark = pytest.mark.db

MODELS = connector_spec("zou").resources
STUDIO_MODELS = (
    "departments",
    "project_statuses",
    "metadata_descriptors",
    "entity_links",
    "preview_files",
    "playlists",
    "schedule_items",
    "milestones",
)
MODEL_ENTITIES = model_for("entities")


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with await start_sandbox("small", services=("zou",)) as running:
        yield running


def studio(sandbox: Sandbox, name: str = "zou") -> zou_sim.ZouService:
    found = sandbox.ctx.state[name]
    assert isinstance(found, zou_sim.ZouService)
    return found


def settings_for(sources: dict[str, dict[str, Any]], **options: Any) -> Settings:
    tables = {name: {**body, "resources": list(MODELS), **options} for name, body in sources.items()}
    return parse_settings({"sources": tables, "pipeline": {"batch_rows": 2000}}, Path("zou-e2e.toml"), {})


def zou_settings(sandbox: Sandbox, **options: Any) -> Settings:
    return settings_for({"zou": source_settings(sandbox)["zou"]}, **options)


async def sync(settings: Settings, pool: asyncpg.Pool, **kw: Any) -> RunSummary:
    summary = await run_sync(settings, pool, stream_factory=build_stream, client_factory=open_client, **kw)
    failed = [(r.resource, r.status, r.error) for r in summary.streams if r.status != "succeeded"]
    assert not failed, failed
    return summary


def sandbox_ids(service: zou_sim.ZouService, resource: str) -> set[str]:
    return set(service.store.rows(model_for(resource).route))


async def live_ids(pool: asyncpg.Pool, resource: str, source: str = "zou") -> set[str]:
    rows = await pool.fetch(
        f"SELECT source_id FROM production.{resource} WHERE source = $1 AND deleted_at IS NULL",
        source,
    )
    return {r["source_id"] for r in rows}


async def assert_mirrors(pool: asyncpg.Pool, service: zou_sim.ZouService, source: str = "zou") -> None:
    for resource in MODELS:
        assert await live_ids(pool, resource, source) == sandbox_ids(service, resource), resource


def data_requests(sandbox: Sandbox) -> Counter[str]:
    counts = sandbox.ctx.counters_for("zou").by_path
    return Counter({path: n for path, n in counts.items() if n})


async def test_full_sync_mirrors_the_studio(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """A first run loads every model exactly as the sandbox holds it and records the events watermark."""
    started = time.perf_counter()
    summary = await sync(zou_settings(sandbox), pool)
    elapsed = time.perf_counter() - started
    service = studio(sandbox)
    await assert_mirrors(pool, service)
    assert {r.mode for r in summary.streams} == {"full"}
    kinds = await pool.fetch("SELECT DISTINCT kind FROM production.entities WHERE kind IS NOT NULL")
    assert {"asset", "shot", "sequence"} <= {r["kind"] for r in kinds}
    assignees = await pool.fetchval("SELECT count(*) FROM production.task_assignees")
    assert assignees == sum(
        len(r.relations.get("assignees", [])) for r in service.store.rows("tasks").values()
    )
    cursors = await pool.fetch("SELECT resource, cursor FROM etl.checkpoints WHERE source = 'zou'")
    newest = service.store.data.events[-1].id
    assert {r["resource"] for r in cursors} == set(MODELS)
    assert all(newest in r["cursor"] for r in cursors)
    print(f"zou full sync: {sandbox.ctx.counters_for('zou').requests} requests in {elapsed:.2f} s")


async def test_incremental_applies_exactly_the_changes(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """After creates, updates and deletes (several in one second) a run re-fetches only what they touched."""
    settings = zou_settings(sandbox)
    await sync(settings, pool)
    service = studio(sandbox)
    tasks = sorted(service.store.rows("tasks"))
    statuses = sorted(service.store.rows("task-status"))
    persons = sorted(service.store.rows("persons"))
    children = {r.fields["object_id"] for r in service.store.rows("comments").values()} | {
        r.fields["task_id"] for r in service.store.rows("time-spents").values()
    }
    changed_task = tasks[0]
    doomed_task = next(t for t in tasks[1:] if t not in children)  # see the cascade test below
    new_status = next(
        s for s in statuses if s != service.store.rows("tasks")[changed_task].fields["task_status_id"]
    )
    service.update("tasks", changed_task, {"task_status_id": new_status})
    comment = service.add(
        "comments",
        {"object_id": changed_task, "object_type": "Task", "person_id": persons[0], "text": "fix the rig"},
    )
    service.delete("tasks", doomed_task)
    doomed_time = sorted(service.store.rows("time-spents"))[0]
    service.delete("time_spents", doomed_time)
    project = sorted(service.store.rows("projects"))[0]
    service.update("projects", project, {"description": "renamed while syncing"})
    sandbox.ctx.reset()  # zero the request counters
    started = time.perf_counter()
    summary = await sync(settings, pool)
    elapsed = time.perf_counter() - started

    assert {r.mode for r in summary.streams} == {"incremental"}
    await assert_mirrors(pool, service)
    row = await pool.fetchrow(
        "SELECT task_status_source_id FROM production.tasks WHERE source_id = $1", changed_task
    )
    assert row["task_status_source_id"] == new_status
    assert await pool.fetchval(
        "SELECT deleted_at IS NOT NULL FROM production.tasks WHERE source_id = $1", doomed_task
    )
    assert (
        await pool.fetchval("SELECT text FROM production.comments WHERE source_id = $1", comment["id"])
        == "fix the rig"
    )
    assert (
        await pool.fetchval("SELECT description FROM production.projects WHERE source_id = $1", project)
        == "renamed while syncing"
    )
    stored = await pool.fetchval("SELECT count(*) FROM production.events WHERE source = 'zou'")
    assert stored >= 6  # update, status-changed, comment:new, two deletes, project:update

    requests = data_requests(sandbox)
    assert requests["/api/data/events/last"] == 1  # one walk of the log, shared by nine streams
    assert requests["/api/data/{model}"] == 3  # one id batch each for tasks, comments and projects
    per_stream = {r.resource: r.requests for r in summary.streams}
    assert per_stream == {
        "projects": 3,  # version probe, the events walk, the touched project
        "entity_types": 0,
        "entities": 0,
        "task_types": 0,
        "task_statuses": 0,
        "tasks": 1,  # the changed task and the commented one, in one batch
        "persons": 0,
        "comments": 1,
        "time_spents": 0,  # its delete is known from the event alone
        **dict.fromkeys(STUDIO_MODELS, 0),  # nothing touched departments … milestones
    }, per_stream
    print(f"zou incremental: {sum(requests.values())} requests in {elapsed:.2f} s: {dict(requests)}")


async def test_deleting_a_task_retires_its_comments_and_time_spent(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """A task:delete event also retires the comments and time spent Zou removed silently with it."""
    settings = zou_settings(sandbox)
    await sync(settings, pool)
    service = studio(sandbox)
    task = next(iter(r.fields["object_id"] for r in service.store.rows("comments").values()))
    service.delete("tasks", task)
    await sync(settings, pool)
    await assert_mirrors(pool, service)


async def test_second_incremental_run_without_changes_fetches_no_rows(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """With nothing new in the log, a run reads the log once and fetches no model rows at all."""
    settings = zou_settings(sandbox)
    await sync(settings, pool)
    sandbox.ctx.reset()
    summary = await sync(settings, pool)
    requests = data_requests(sandbox)
    assert sum(r.inserted + r.updated for r in summary.streams) == 0
    assert set(requests) <= {"/api/", "/api/data/events/last", "/api/auth/login"}, requests


class ExpireMidStream:
    """A stream that lets the studio expire every token after its second page (a clock jump)."""

    def __init__(self, inner: ZouStream, sandbox: Sandbox) -> None:
        self.inner, self.sandbox = inner, sandbox

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def pages(self, state: Any) -> AsyncIterator[Page]:
        count = 0
        async for page in self.inner.pages(state):
            count += 1
            if count == 2:
                self.sandbox.ctx.expire_tokens("zou")
            yield page


async def test_token_expiry_mid_run_is_refreshed_without_losing_a_page(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """Tokens expiring in the middle of a paged scan are refreshed; every page still loads."""
    settings = zou_settings(sandbox, page_size=10, rate={"requests": 200, "per_seconds": 1.0})

    def factory(source: SourceSettings, resource: str, client: Any) -> Any:
        stream = build_stream(source, resource, client)
        return ExpireMidStream(stream, sandbox) if resource == "tasks" else stream

    summary = await run_sync(settings, pool, stream_factory=factory, client_factory=open_client)
    assert {r.status for r in summary.streams} == {"succeeded"}
    service = studio(sandbox)
    await assert_mirrors(pool, service)
    auth = service.describe()["auth"]
    assert auth["expired"] >= 1, auth
    assert auth["logins"] + auth["refreshes"] >= 2, auth
    tasks = next(r for r in summary.streams if r.resource == "tasks")
    assert tasks.pages >= len(service.store.rows("tasks")) // 10


async def test_old_server_pages_events_with_before(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """An old server (no cursor_event_id, no cap) is detected from its version and paged with before."""
    service = studio(sandbox)
    service.configure(old_server=True)
    settings = zou_settings(sandbox, event_limit=2)
    await sync(settings, pool)
    persons = sorted(service.store.rows("persons"))
    for n, person in enumerate(persons[:5]):  # five events inside one second: pages of two share it
        service.update("persons", person, {"phone": f"+33 1 00 00 00 0{n}"})
    sandbox.ctx.reset()
    summary = await sync(settings, pool)
    await assert_mirrors(pool, service)
    phones = await pool.fetch("SELECT phone FROM production.persons WHERE phone LIKE '+33 1 00%'")
    assert len(phones) == 5
    requests = data_requests(sandbox)
    assert requests["/api/"] == 1
    assert requests["/api/data/events/last"] >= 3
    persons_stream = next(r for r in summary.streams if r.resource == "persons")
    assert persons_stream.requests == 1  # the five phones in one id batch


async def test_rows_moving_during_the_scan_are_reconciled_by_id(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """Updates and deletes while pages are read (rows shift between pages) still end in an exact copy."""
    service = studio(sandbox)
    settings = zou_settings(sandbox, page_size=10, rate={"requests": 200, "per_seconds": 1.0})

    def factory(source: SourceSettings, resource: str, client: Any) -> Any:
        stream = build_stream(source, resource, client)
        return ShiftingStream(stream, service) if resource == "comments" else stream

    with capture_logs() as logs:
        summary = await run_sync(settings, pool, stream_factory=factory, client_factory=open_client)
    assert any(e["event"] == "zou_repage" for e in logs)  # the skipped unchanged row needed a re-pass
    assert {r.status for r in summary.streams} == {"succeeded"}
    await assert_mirrors(pool, service)
    edited = await pool.fetchval("SELECT count(*) FROM production.comments WHERE text = 'edited mid-scan'")
    assert edited == 1
    gone = await pool.fetchval("SELECT count(*) FROM production.comments WHERE deleted_at IS NOT NULL")
    raw_gone = await pool.fetchval(
        "SELECT count(*) FROM raw.records WHERE resource = 'comments' AND deleted_at IS NOT NULL"
    )
    assert (gone, raw_gone) == (1, 1)  # the table and raw agree, so a replay keeps it deleted


class ShiftingStream(ExpireMidStream):
    """After page 1 the studio deletes a row already read (later rows shift up a place: one is
    skipped); after page 2 it edits a row not read yet (it jumps to page 1: skipped too)."""

    def __init__(self, inner: ZouStream, service: zou_sim.ZouService) -> None:
        self.inner, self.service = inner, service
        self.read: set[str] = set()

    async def pages(self, state: Any) -> AsyncIterator[Page]:
        count = 0
        async for page in self.inner.pages(state):
            count += 1
            rows = page.doc.get("data", []) if isinstance(page.doc, dict) else []
            self.read |= {r["id"] for r in rows}
            if count == 1:
                self.service.delete("comments", rows[0]["id"])
            if count == 2:
                unread = sorted(set(self.service.store.rows("comments")) - self.read)
                self.service.update("comments", unread[-1], {"text": "edited mid-scan"})
            yield page


async def test_two_studios_stay_separate(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """Two Zou sources side by side load into their own source, and a change in one touches only it."""
    app = zou_sim.create_app(sandbox.ctx, name="studio_b")
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        base = source_settings(sandbox)["zou"]
        settings = settings_for(
            {"zou": base, "studio_b": {**base, "base_url": f"http://127.0.0.1:{port}/api"}}
        )
        await sync(settings, pool)
        a, b = studio(sandbox), studio(sandbox, "studio_b")
        await assert_mirrors(pool, a, "zou")
        await assert_mirrors(pool, b, "studio_b")
        assert not sandbox_ids(a, "tasks") & sandbox_ids(b, "tasks")
        project = sorted(b.store.rows("projects"))[0]
        b.update("projects", project, {"description": "studio b only"})
        summary = await sync(settings, pool)
        changed = {(r.source, r.resource) for r in summary.streams if r.updated or r.inserted}
        assert ("studio_b", "projects") in changed
        assert not any(source == "zou" for source, _ in changed)
    finally:
        await runner.cleanup()


async def test_example_queries_answer_from_synced_data(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """Tasks per status per project and hours per person per week match the studio's own numbers."""
    await sync(zou_settings(sandbox), pool)
    service = studio(sandbox)
    rows = await pool.fetch(
        """SELECT p.name AS project, s.name AS status, count(*) AS tasks
           FROM production.tasks t
           JOIN production.projects p ON p.id = t.project_id
           JOIN production.task_statuses s ON s.id = t.task_status_id
           WHERE t.deleted_at IS NULL GROUP BY 1, 2"""
    )
    projects = {i: r.fields["name"] for i, r in service.store.rows("projects").items()}
    names = {i: r.fields["name"] for i, r in service.store.rows("task-status").items()}
    expected = Counter(
        (projects[t.fields["project_id"]], names[t.fields["task_status_id"]])
        for t in service.store.rows("tasks").values()
    )
    assert {(r["project"], r["status"]): r["tasks"] for r in rows} == dict(expected)

    hours = await pool.fetch(
        """SELECT p.source_id AS person, date_trunc('week', ts.date)::date AS week, sum(ts.duration) AS total
           FROM production.time_spents ts JOIN production.persons p ON p.id = ts.person_id
           WHERE ts.deleted_at IS NULL GROUP BY 1, 2"""
    )
    want: Counter[tuple[str, date]] = Counter()
    for t in service.store.rows("time-spents").values():
        day = date.fromisoformat(str(t.fields["date"])[:10])
        want[(t.fields["person_id"], day - timedelta(days=day.weekday()))] += float(t.fields["duration"])
    got = {(r["person"], r["week"]): float(r["total"]) for r in hours}
    assert got == pytest.approx(dict(want))


@pytest.mark.parametrize("event_limit", [40, 1000])
async def test_full_sync_reads_the_events_log_a_handful_of_times(
    sandbox: Sandbox, pool: asyncpg.Pool, event_limit: int
) -> None:
    """One shared read of the events log for every stream of a source: not a walk of it per stream."""
    settings = zou_settings(sandbox, event_limit=event_limit)
    service = studio(sandbox)
    for n, person in enumerate(sorted(service.store.rows("persons"))[:3]):  # a busy overlap window
        service.update("persons", person, {"phone": f"+33 1 00 00 00 1{n}"})
    sandbox.ctx.reset()
    await sync(settings, pool)
    requests = data_requests(sandbox)
    total = sum(requests.values())
    log_reads = requests["/api/data/events/last"]
    print(f"zou full sync, event_limit={event_limit}: {log_reads} of {total} requests read the events log")
    await assert_mirrors(pool, service)
    assert log_reads <= len(MODELS) + 2, requests


def with_options(settings: Settings, **options: Any) -> Settings:
    """The settings with connector options the config check would refuse (a server-side cap test)."""
    source = settings.sources["zou"]
    changed = source.model_copy(update={"options": {**source.options, **options}})
    return settings.model_copy(update={"sources": {"zou": changed}})


async def test_events_beyond_a_server_capped_page_are_not_lost(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """1,191 pending events, asked for 2,000 a page, served 1,000 (zou's cap): every one is applied."""
    settings = zou_settings(sandbox)
    await sync(settings, pool)
    service = studio(sandbox)
    before = len(service.store.data.events)
    doomed = sorted(service.store.rows("time-spents"))[:31]
    for time_spent in doomed:  # the oldest events: on the page a trusting client never asks for
        service.delete("time_spents", time_spent)
    persons = sorted(service.store.rows("persons"))
    for n in range(1191 - len(doomed)):
        service.update("persons", persons[n % len(persons)], {"phone": f"+33 2 {n:08d}"})
    assert len(service.store.data.events) - before == 1191
    sandbox.ctx.reset()
    with capture_logs() as logs:
        await sync(with_options(settings, event_limit=2000), pool)
    await assert_mirrors(pool, service)
    assert not await live_ids(pool, "time_spents") & set(doomed)
    new_ids = {e.id for e in service.store.data.events[before:]}
    stored = await pool.fetch("SELECT source_id FROM production.events WHERE source = 'zou'")
    assert new_ids <= {r["source_id"] for r in stored}
    assert any(e["event"] == "zou_events_page_capped" and e["served"] == 1000 for e in logs)
    assert data_requests(sandbox)["/api/data/events/last"] == 2


async def test_concept_folders_sync_incrementally(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """concept-folder:new/update/delete (concept_folder_id) reach production.entities as concept_folder."""
    settings = zou_settings(sandbox)
    await sync(settings, pool)
    service = studio(sandbox)
    project = sorted(service.store.rows("projects"))[0]
    folder = service.add("concept-folders", {"name": "Moodboards", "project_id": project})
    assert service.store.data.events[-1].name == "concept-folder:new"
    await sync(settings, pool)
    row = await pool.fetchrow(
        "SELECT kind, name, deleted_at FROM production.entities WHERE source_id = $1", folder["id"]
    )
    assert (row["kind"], row["name"], row["deleted_at"]) == ("concept_folder", "Moodboards", None)
    service.update("entities", folder["id"], {"name": "Moodboards v2"})
    await sync(settings, pool)
    name = await pool.fetchval("SELECT name FROM production.entities WHERE source_id = $1", folder["id"])
    assert name == "Moodboards v2"
    service.delete("entities", folder["id"])
    assert service.store.data.events[-1].name == "concept-folder:delete"
    await sync(settings, pool)
    await assert_mirrors(pool, service)
    assert await pool.fetchval(
        "SELECT deleted_at IS NOT NULL FROM production.entities WHERE source_id = $1", folder["id"]
    )
    kinds = await pool.fetch("SELECT kind FROM production.entity_types WHERE name = 'ConceptFolder'")
    assert [r["kind"] for r in kinds] == ["concept_folder"]


async def test_a_canceled_asset_announced_as_deleted_is_kept(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """zou's cancel_asset emits asset:delete but keeps the asset (canceled = true): it stays live."""
    settings = zou_settings(sandbox)
    await sync(settings, pool)
    service = studio(sandbox)
    asset = next(
        r.id
        for r in service.store.rows("entities").values()
        if service.store._kind(MODEL_ENTITIES, r) == "asset"
    )
    assert service.store.cancel("entities", asset) == "canceled"
    assert service.store.data.events[-1].name == "asset:delete"
    with capture_logs() as logs:
        await sync(settings, pool)
    row = await pool.fetchrow(
        "SELECT canceled, deleted_at FROM production.entities WHERE source_id = $1", asset
    )
    assert (row["canceled"], row["deleted_at"]) == (True, None)
    assert any(e["event"] == "zou_delete_event_row_kept" for e in logs)
    await assert_mirrors(pool, service)


async def test_unknown_event_names_are_counted_and_logged_once(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """An event about an object zou 1.0.97 never names is stored, counted and warned about once a run."""
    settings = zou_settings(sandbox)
    await sync(settings, pool)
    service = studio(sandbox)
    store = service.store
    for n in range(3):
        at = store.data.events[-1].created_us + 1
        event = zou_sim_event(
            f"00000000-0000-4000-8000-00000000000{n}", at, "gizmo:new", None, None, {"gizmo_id": str(n)}
        )
        store._event_index[event.id] = len(store.data.events)
        store.data.events.append(event)
    with capture_logs() as logs:
        await sync(settings, pool)
    warnings = [e for e in logs if e["event"] == "zou_events_unknown"]
    assert [w["names"] for w in warnings] == [{"gizmo:new": 3}]
    changes = [e for e in logs if e["event"] == "zou_changes"]
    assert changes
    assert all(e["unknown"] == 3 for e in changes)
    stored = await pool.fetchval("SELECT count(*) FROM production.events WHERE name = 'gizmo:new'")
    assert stored == 3


class HidingStream(ExpireMidStream):
    """A listing that leaves out one live row (as a page shifting under a scan can): the scan's own
    count still says it holds every row, so only the lookup by id can tell the row is there."""

    def __init__(self, inner: ZouStream, hidden: str) -> None:
        self.inner, self.hidden = inner, hidden

    async def pages(self, state: Any) -> AsyncIterator[Page]:
        async for page in self.inner.pages(state):
            if isinstance(page.doc, dict) and isinstance(page.doc.get("data"), list):
                rows = [r for r in page.doc["data"] if r.get("id") != self.hidden]
                page = Page(
                    {**page.doc, "data": rows}, nbytes=page.nbytes, expected_total=page.expected_total
                )
            yield page


async def test_a_full_scan_deletes_only_what_a_lookup_by_id_confirms(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """A comment removed silently (zou drops a task's comments without events) is deleted by the
    next full scan at once, because ``?id=[…]`` no longer returns it; a live comment the listing
    missed answers the same lookup and stays live, scan after scan."""
    service = studio(sandbox)
    settings = zou_settings(sandbox, page_size=10, rate={"requests": 200, "per_seconds": 1.0})
    await sync(settings, pool)
    comments = sorted(service.store.rows("comments"))
    gone, hidden = comments[0], comments[1]
    del service.store.data.tables["comments"][gone]  # no event: only a scan can notice

    def factory(source: SourceSettings, resource: str, client: Any) -> Any:
        stream = build_stream(source, resource, client)
        return HidingStream(stream, hidden) if resource == "comments" else stream

    for _ in range(2):  # without a lookup the two-scan rule would delete the hidden one the 2nd time
        with capture_logs() as logs:
            summary = await run_sync(
                settings, pool, stream_factory=factory, client_factory=open_client, full=True
            )
        assert {r.status for r in summary.streams} == {"succeeded"}
        verified = [e for e in logs if e["event"] == "verify_unseen_done"]
        assert verified, "no lookup by id ran"
        assert verified[0]["answered"] == 1, verified
        rows = await pool.fetch(
            "SELECT source_id, deleted_at FROM production.comments WHERE source_id = ANY($1)", [gone, hidden]
        )
        states = {r["source_id"]: r["deleted_at"] is not None for r in rows}
        assert states == {gone: True, hidden: False}
        raw_hidden = await pool.fetchval(
            "SELECT deleted_at IS NULL FROM raw.records WHERE resource = 'comments' AND source_id = $1",
            hidden,
        )
        assert raw_hidden is True
    comments_stream = next(r for r in summary.streams if r.resource == "comments")
    assert comments_stream.deleted == 0  # the second scan finds nothing new to delete
