"""Zou's studio models end to end against the sandbox studio: departments, project statuses,
metadata descriptors, casting, preview files, playlists, schedule items and milestones sync with
their references resolved, changes and deletes (events, re-made casting, silent cascades) apply
incrementally, an interrupted scan resumes, and the late-tasks query answers from the rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pipeline.runner import run_sync
from pipeline.sandbox.server import Sandbox
from pipeline.sandbox.zou_store import model_for
from pipeline.sources import build_stream, open_client
from pipeline.streams import Page
from tests.integration.test_zou_e2e import (
    MODEL_ENTITIES,
    STUDIO_MODELS,
    ExpireMidStream,
    assert_mirrors,
    data_requests,
    live_ids,
    sandbox,
    studio,
    sync,
    zou_settings,
)

pytestmark = pytest.mark.db
__all__ = ["sandbox"]  # the fixture, shared with the other Zou end-to-end tests

LATE_TASKS = Path(__file__).parents[2] / "sql/queries/13_late_tasks_per_department.sql"


async def test_studio_models_load_with_their_references(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """A first sync mirrors every studio model and fills each surrogate reference it names."""
    summary = await sync(zou_settings(sandbox), pool)
    service = studio(sandbox)
    await assert_mirrors(pool, service)
    inserted = {r.resource: r.inserted for r in summary.streams}
    for resource in STUDIO_MODELS:
        held = len(service.store.rows(model_for(resource).route))
        assert inserted[resource] == held > 0, resource
    unresolved = {
        "entity_links": "entity_in_id IS NULL OR entity_out_id IS NULL",
        "preview_files": "task_id IS NULL OR person_id IS NULL",
        "metadata_descriptors": "project_id IS NULL",
        "playlists": "project_id IS NULL",
        "schedule_items": "project_id IS NULL OR task_type_id IS NULL",
        "milestones": "project_id IS NULL",
        "projects": "project_status_id IS NULL",
        "comments": "preview_file_source_id IS NOT NULL AND preview_file_id IS NULL",
        "task_types": "department_source_id IS NOT NULL AND department_id IS NULL",
    }
    for table, missing in unresolved.items():
        assert await pool.fetchval(f"SELECT count(*) FROM production.{table} WHERE {missing}") == 0, table
    departed = await pool.fetchval(
        "SELECT count(*) FROM production.task_types WHERE department_id IS NOT NULL"
    )
    assert departed == sum(1 for r in service.store.rows("task-types").values() if r.fields["department_id"])
    # A descriptor names the key of its values in entity.data: every asset carries the complexity.
    complexity = await pool.fetchval(
        """SELECT count(*) FROM production.entities e
             JOIN production.metadata_descriptors d ON d.project_id = e.project_id AND d.entity_type = 'Asset'
            WHERE d.field_name = 'complexity' AND e.kind = 'asset' AND e.data ? d.field_name"""
    )
    assert complexity == await pool.fetchval("SELECT count(*) FROM production.entities WHERE kind = 'asset'")
    dated = await pool.fetchrow(
        """SELECT count(*) FILTER (WHERE s.is_done AND t.done_date IS NULL) AS done_without,
                  count(*) FILTER (WHERE NOT s.is_done AND t.done_date IS NOT NULL) AS open_with,
                  count(*) FILTER (WHERE t.due_date IS NULL) AS undue
             FROM production.tasks t JOIN production.task_statuses s ON s.id = t.task_status_id"""
    )
    assert dict(dated) == {"done_without": 0, "open_with": 0, "undue": 0}


async def test_late_tasks_query_matches_the_studio(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """sql/queries/12 counts, per project and department, the tasks done after their due date."""
    await sync(zou_settings(sandbox), pool)
    service = studio(sandbox)
    store = service.store
    done = {i for i, r in store.rows("task-status").items() if r.fields["is_done"]}
    departments = {i: r.fields["name"] for i, r in store.rows("departments").items()}
    types = {i: departments.get(r.fields["department_id"] or "") for i, r in store.rows("task-types").items()}
    projects = {i: r.fields["name"] for i, r in store.rows("projects").items()}
    late: Counter[tuple[str, str | None]] = Counter()
    for task in store.rows("tasks").values():
        f = task.fields
        if f["task_status_id"] in done and f["done_date"] > f["due_date"]:
            late[(projects[f["project_id"]], types[f["task_type_id"]])] += 1
    rows = await pool.fetch(LATE_TASKS.read_text())
    assert rows
    assert {(r["project"], r["department"]): r["done_late"] for r in rows if r["done_late"]} == dict(late)
    assert all(r["open_overdue"] >= 0 and r["tasks"] >= r["done_late"] + r["open_overdue"] for r in rows)


async def test_changes_recasting_and_deletes_apply_incrementally(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """Edits, a new milestone, a re-made casting (with the episode link zou adds for a newly cast asset)
    and deletes (by event, and the rows zou drops silently with a task or an entity) reach the tables
    on the next run, with a request or three per touched model."""
    settings = zou_settings(sandbox)
    await sync(settings, pool)
    service = studio(sandbox)
    store = service.store
    department = sorted(store.rows("departments"))[0]
    service.update("departments", department, {"name": "Layout & Animation"})
    project = sorted(store.rows("projects"))[0]
    milestone = service.add("milestones", {"project_id": project, "name": "Trailer", "date": "2025-09-01"})
    preview = sorted(store.rows("preview-files"))[0]
    service.update("preview-files", preview, {"validation_status": "validated"})
    before = {route: set(store.rows(route)) for route in ("entity-links", "preview-files", "playlists")}
    links = store.rows("entity-links")
    cast_shot, episode, asset = recast_target(service)
    old_links = {i for i, r in links.items() if r.fields["entity_in_id"] == cast_shot}
    kept = sorted(r.fields["entity_out_id"] for r in links.values() if r.fields["entity_in_id"] == cast_shot)
    casting = [*({"asset_id": a, "nb_occurences": 1} for a in kept), {"asset_id": asset, "nb_occurences": 2}]
    made = store.set_casting(cast_shot, casting)  # nothing removed: the episode hears nothing of its count
    new_links = {r["id"] for r in made}
    fresh_link = next(r["id"] for r in made if r["entity_out_id"] == asset)
    auto = [
        r for r in links.values() if (r.fields["entity_in_id"], r.fields["entity_out_id"]) == (episode, asset)
    ]
    assert [r.fields["data"] for r in auto] == [{"auto": True}]  # zou cast it in the episode too
    playlist = sorted(store.rows("playlists"))[0]
    service.delete("playlists", playlist)
    entities = store.rows("entities")
    previewed = sorted(  # a task whose preview is its entity's thumbnail: zou unsets it, announced
        {
            r.fields["task_id"]
            for i, r in store.rows("preview-files").items()
            if entities[store.rows("tasks")[r.fields["task_id"]].fields["entity_id"]].fields[
                "preview_file_id"
            ]
            == i
        }
        - {store.rows("preview-files")[preview].fields["task_id"]}
    )[0]
    silent = {i for i, r in store.rows("preview-files").items() if r.fields["task_id"] == previewed}
    thumbnailed = str(store.rows("tasks")[previewed].fields["entity_id"])
    service.delete("tasks", previewed)
    shots = {i for i, r in store.rows("entities").items() if store._kind(MODEL_ENTITIES, r) == "shot"}
    doomed_shot = sorted({r.fields["entity_in_id"] for r in links.values()} & shots - {cast_shot})[0]
    dropped_links = {i for i, r in links.items() if r.fields["entity_in_id"] == doomed_shot}
    assert dropped_links
    assert store.delete("entities", doomed_shot, force=True) == "deleted"
    after = {route: set(store.rows(route)) for route in before}
    sandbox.ctx.reset()

    summary = await sync(settings, pool)

    assert {r.mode for r in summary.streams} == {"incremental"}
    await assert_mirrors(pool, service)
    assert await pool.fetchval(
        "SELECT name FROM production.departments WHERE source_id = $1", department
    ) == ("Layout & Animation")
    row = await pool.fetchrow(
        "SELECT name, date, project_id IS NOT NULL AS resolved FROM production.milestones "
        "WHERE source_id = $1",
        milestone["id"],
    )
    assert (row["name"], str(row["date"]), row["resolved"]) == ("Trailer", "2025-09-01", True)
    assert (
        await pool.fetchval(
            "SELECT validation_status FROM production.preview_files WHERE source_id = $1", preview
        )
        == "validated"
    )
    gone = set().union(*(before[route] - after[route] for route in before))
    assert old_links | silent | dropped_links | {playlist} <= gone
    retired = await pool.fetch(
        """SELECT source_id FROM production.entity_links WHERE deleted_at IS NOT NULL
           UNION ALL SELECT source_id FROM production.preview_files WHERE deleted_at IS NOT NULL
           UNION ALL SELECT source_id FROM production.playlists WHERE deleted_at IS NOT NULL"""
    )
    assert {r["source_id"] for r in retired} == gone
    raw_live = await pool.fetchval(
        "SELECT count(*) FROM raw.records WHERE source_id = ANY($1::text[]) AND deleted_at IS NULL",
        sorted(gone),
    )
    assert raw_live == 0  # raw agrees with the tables, so a replay keeps them retired
    counted = await pool.fetchval(
        "SELECT nb_entities_out FROM production.entities WHERE source_id = $1", episode
    )
    assert counted == store.rows("entities")[episode].fields["nb_entities_out"]  # bumped unannounced
    thumbnail = await pool.fetchval(
        "SELECT preview_file_source_id FROM production.entities WHERE source_id = $1", thumbnailed
    )
    assert thumbnail == store.rows("entities")[thumbnailed].fields["preview_file_id"]  # set-main followed
    assert thumbnail is None  # the sandbox's projects do not set previews automatically
    assert await live_ids(pool, "entity_links") >= new_links
    cast = await pool.fetchrow(
        "SELECT nb_occurences, entity_out_id IS NOT NULL AS resolved FROM production.entity_links "
        "WHERE source_id = $1",
        fresh_link,
    )
    assert (cast["nb_occurences"], cast["resolved"]) == (2, True)
    per_stream = {r.resource: r.requests for r in summary.streams if r.resource in STUDIO_MODELS}
    assert per_stream == {
        "departments": 1,  # the renamed department
        "project_statuses": 0,
        "metadata_descriptors": 0,
        # the new links by id, the re-cast shot's by entity_in_id, the new asset's by entity_out_id
        # (its episode link); the deleted shot's links go by trigger
        "entity_links": 3,
        "preview_files": 1,  # the validated preview
        "playlists": 0,  # its delete is known from the event alone
        "schedule_items": 0,
        "milestones": 1,  # the new milestone
    }, per_stream
    assert data_requests(sandbox)["/api/data/events/last"] == 1


def recast_target(service: Any) -> tuple[str, str, str]:
    """A cast shot of a TV show, its episode, and an asset of the project its episode does not cast."""
    store = service.store
    entities = store.rows("entities")
    links = store.rows("entity-links")
    cast_by = {}
    for link in links.values():
        cast_by.setdefault(link.fields["entity_in_id"], set()).add(link.fields["entity_out_id"])
    for shot_id in sorted(cast_by):
        shot = entities[shot_id]
        episode = store._episode_of(shot)
        if episode is None:
            continue
        assets = {
            i
            for i, e in entities.items()
            if e.fields["project_id"] == shot.fields["project_id"]
            and store._kind(MODEL_ENTITIES, e) == "asset"
        }
        fresh = sorted(assets - cast_by.get(episode.id, set()))
        if fresh:
            return shot_id, episode.id, fresh[0]
    raise AssertionError("the sandbox studio has no cast TV-show shot to re-cast")


class FailAfter(ExpireMidStream):
    """A scan whose server starts failing preview-file pages after the stream's third page."""

    async def pages(self, state: Any) -> AsyncIterator[Page]:
        count = 0
        async for page in self.inner.pages(state):
            count += 1
            if count == 3:
                self.sandbox.ctx.inject(
                    "zou", error_burst=1000, error_status=500, path_prefix="/api/data/preview-files"
                )
            yield page


async def test_an_interrupted_preview_scan_resumes_with_the_missing_pages(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """Preview pages failing mid-scan fail only that stream; the next run reads what was not committed."""
    settings = zou_settings(sandbox, page_size=10, max_attempts=1, rate={"requests": 200, "per_seconds": 1.0})

    def factory(source: Any, resource: str, client: Any) -> Any:
        stream = build_stream(source, resource, client)
        return FailAfter(stream, sandbox) if resource == "preview_files" else stream

    broken = await run_sync(settings, pool, stream_factory=factory, client_factory=open_client)
    statuses = {r.resource: r.status for r in broken.streams}
    assert statuses.pop("preview_files") == "failed"
    assert set(statuses.values()) == {"succeeded"}
    scan = await pool.fetchval(
        "SELECT scan FROM etl.checkpoints WHERE source = 'zou' AND resource = 'preview_files'"
    )
    committed = sum(hi - lo + 1 for lo, hi in scan["pages"])
    service = studio(sandbox)
    total_pages = -(-len(service.store.rows("preview-files")) // 10)
    assert 0 < committed < total_pages

    sandbox.ctx.clear_faults("zou")
    resumed = await sync(settings, pool)
    previews = next(r for r in resumed.streams if r.resource == "preview_files")
    assert previews.mode == "full"
    assert previews.pages < total_pages + 1  # the committed pages (page 1 apart) are not read again
    await assert_mirrors(pool, service)
    assert await pool.fetchval(
        "SELECT scan_completed_at IS NOT NULL FROM etl.checkpoints "
        "WHERE source = 'zou' AND resource = 'preview_files'"
    )
