"""Writes to a real Zou studio through CGWire's ``gazu`` client: run with the zou venv's Python.

    studio.py seed         two projects (a TV show with episodes, a short), persons, assets,
                           sequences, shots, tasks, assignments, comments, time spents, concept folders,
                           and the studio models: a department, metadata descriptors, casting,
                           preview files, playlists, schedule items, milestones
    studio.py round        one incremental round: every event kind the connector claims
    studio.py burst N      N ``person:update`` events (phone numbers), for events-log paging
    studio.py cancel ID    zou's own ``cancel_asset`` (the Shotgun import path), in process

Reads ``ZOU_URL``, ``ZOU_EMAIL``, ``ZOU_PASSWORD``; prints one JSON object (what it made) on stdout.
``cancel`` imports zou itself and needs the server's ``DB_*``/``KV_*`` environment.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import gazu


def connect() -> None:
    gazu.set_host(os.environ["ZOU_URL"])
    gazu.log_in(os.environ["ZOU_EMAIL"], os.environ["ZOU_PASSWORD"])


def by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in rows}


def seed() -> dict[str, Any]:
    types = by_name(gazu.task.all_task_types())
    statuses = by_name(gazu.task.all_task_statuses())
    asset_types = by_name(gazu.asset.all_asset_types())
    persons = [
        gazu.person.new_person(first, last, f"{first.lower()}.{last.lower()}@compat.example", role=role)
        for first, last, role in (
            ("Ada", "Lovelace", "user"),
            ("Grace", "Hopper", "supervisor"),
            ("Alan", "Turing", "manager"),
        )
    ]
    todo, wip = statuses["Todo"], statuses.get("Work In Progress") or statuses["Todo"]
    made: dict[str, list[str]] = {"projects": [], "assets": [], "shots": [], "tasks": [], "comments": []}
    department = gazu.client.create("departments", {"name": "Compat Animation", "color": "#F57C00"})
    gazu.client.put(f"data/task-types/{types['Animation']['id']}", {"department_id": department["id"]})
    made["departments"] = [department["id"]]
    n = 0
    for name, kind in (("Compat Show", "tvshow"), ("Compat Short", "short")):
        project = gazu.project.new_project(name, production_type=kind)
        made["projects"].append(project["id"])
        gazu.client.post(f"data/projects/{project['id']}/concept-folders", {"name": f"{name} boards"})
        entities: list[tuple[dict[str, Any], list[str]]] = []
        for type_name in ("Character", "Prop", "Environment"):
            for i in range(3):
                asset = gazu.asset.new_asset(
                    project, asset_types[type_name], f"{type_name} {i}", description=f"{type_name} number {i}"
                )
                made["assets"].append(asset["id"])
                entities.append((asset, ["Modeling", "Shading"]))
        episodes = [gazu.shot.new_episode(project, f"E0{e}") for e in (1, 2)] if kind == "tvshow" else [None]
        for episode in episodes:
            for s in (1, 2):
                sequence = gazu.shot.new_sequence(project, f"SQ0{s}", episode=episode)
                for k in range(1, 5):
                    shot = gazu.shot.new_shot(project, sequence, f"SH0{k}0", nb_frames=24 * k)
                    made["shots"].append(shot["id"])
                    entities.append((shot, ["Animation", "Compositing"]))
        for entity, wanted in entities:
            for type_name in wanted:
                n += 1
                assignee = persons[n % len(persons)]
                task = gazu.task.new_task(entity, types[type_name], task_status=todo, assignees=[assignee])
                made["tasks"].append(task["id"])
                if n % 3 == 0:
                    comment = gazu.task.add_comment(task, wip, f"first pass {n}")
                    made["comments"].append(comment["id"])
                if n % 4 == 0:
                    gazu.task.add_time_spent(task, assignee, "2026-11-30", 60 + n)
        studio_models(project, entities, persons[0], types["Animation"], department, made)
    return {"persons": [p["id"] for p in persons], **made}


def studio_models(
    project: dict[str, Any],
    entities: list[tuple[dict[str, Any], list[str]]],
    person: dict[str, Any],
    animation: dict[str, Any],
    department: dict[str, Any],
    made: dict[str, list[str]],
) -> None:
    """A descriptor, the casting of four shots, a preview, a playlist, a schedule item, a milestone."""
    gazu.project.add_metadata_descriptor(
        project,
        "Complexity",
        "Asset",
        data_type="list",
        choices=["simple", "complex"],
        departments=[department],
    )
    assets = [e for e, wanted in entities if "Modeling" in wanted]
    shots = [e for e, wanted in entities if "Animation" in wanted]
    for k, shot in enumerate(shots[:4]):
        casting = [{"asset_id": a["id"], "nb_occurences": 1 + k % 2} for a in assets[k : k + 2]]
        gazu.casting.update_shot_casting(project, shot, casting)
    task = next(t for t in gazu.task.all_tasks_for_shot(shots[0]) if t["task_type_id"] == animation["id"])
    preview = gazu.client.create(
        "preview-files",
        {
            "name": "v001",
            "original_name": "anim_v001.mp4",
            "revision": 1,
            "extension": "mp4",
            "source": "webgui",
            "status": "ready",
            "file_size": 1_048_576,
            "width": 1920,
            "height": 1080,
            "duration": 2.5,
            "task_id": task["id"],
            "person_id": person["id"],
        },
    )
    playlist = gazu.playlist.new_playlist(project, f"{project['name']} dailies")
    shots_json = [{"entity_id": shots[0]["id"], "preview_file_id": preview["id"]}]
    gazu.client.put(f"data/playlists/{playlist['id']}", {"shots": shots_json})
    gazu.client.create(
        "schedule-items",
        {
            "project_id": project["id"],
            "task_type_id": animation["id"],
            "start_date": "2026-01-05",
            "end_date": "2026-03-27",
            "man_days": 40,
        },
    )
    milestone = gazu.client.create(
        "milestones",
        {
            "project_id": project["id"],
            "task_type_id": animation["id"],
            "name": "Picture lock",
            "date": "2026-03-27",
        },
    )
    for key, value in (("preview_files", preview), ("playlists", playlist), ("milestones", milestone)):
        made.setdefault(key, []).append(value["id"])


def round_of_changes() -> dict[str, Any]:
    """Renames, a status change, assignments, a comment, time spents, new/deleted shots, cancellations."""
    statuses = by_name(gazu.task.all_task_statuses())
    types = by_name(gazu.task.all_task_types())
    projects = sorted(gazu.project.all_projects(), key=lambda p: p["name"])
    project = projects[0]
    assets = sorted(gazu.asset.all_assets_for_project(project), key=lambda a: a["name"])
    shots = sorted(gazu.shot.all_shots_for_project(project), key=lambda s: s["name"])
    persons = sorted(gazu.person.all_persons(), key=lambda p: p["email"])
    out: dict[str, Any] = {}

    renamed = gazu.asset.update_asset({"id": assets[0]["id"], "name": "Character 0 renamed"})
    out["renamed_asset"] = renamed["id"]
    gazu.shot.update_shot({"id": shots[0]["id"], "description": "new description"})
    gazu.project.update_project({"id": project["id"], "description": "renamed while syncing"})

    gone = shots[-1]  # force-deleted below with its tasks: none of the tasks changed here is its
    tasks = sorted(
        (t for t in gazu.task.all_tasks_for_project(project) if t["entity_id"] != gone["id"]),
        key=lambda t: t["id"],
    )
    status_task = tasks[0]
    comment = gazu.task.add_comment(status_task, statuses["Done"], "approved")  # task:status-changed
    out["status_task"], out["comment"] = status_task["id"], comment["id"]
    assign_task = tasks[1]
    gazu.task.clear_assignations(assign_task)  # task:unassign
    gazu.task.assign_task(assign_task, persons[-1])  # task:assign
    out["assign_task"] = assign_task["id"]
    worker = tasks[2]["assignees"][0]  # zou refuses time logged by someone not on the task
    time_spent = gazu.task.add_time_spent(tasks[2], worker, "2026-12-01", 90)
    out["time_spent"] = time_spent["id"]

    sequence = gazu.shot.all_sequences_for_project(project)[0]
    new_shot = gazu.shot.new_shot(project, sequence, "SH990", nb_frames=12)
    gazu.task.new_task(new_shot, types["Animation"], task_status=statuses["Todo"])
    doomed_shot = gazu.shot.new_shot(project, sequence, "SH991", nb_frames=12)
    gazu.shot.remove_shot(doomed_shot)  # no task: a real delete
    out["new_shot"], out["short_lived_shot"] = new_shot["id"], doomed_shot["id"]
    gazu.shot.remove_shot(gone, force=True)  # synced, with tasks: shot:delete and a task:delete each
    out["deleted_shot"] = gone["id"]
    doomed_task = tasks[3]
    gazu.task.remove_task(doomed_task)
    out["deleted_task"] = doomed_task["id"]
    canceled = assets[1]
    gazu.asset.remove_asset(canceled)  # has tasks: kept with canceled = true (asset:update)
    out["canceled_asset"] = canceled["id"]

    department = next(d for d in gazu.client.fetch_all("departments") if d["name"] == "Compat Animation")
    gazu.client.put(f"data/departments/{department['id']}", {"color": "#123456"})
    out["department"] = department["id"]
    show = next(p for p in projects if p["production_type"] == "tvshow")
    show_shots = {s["id"] for s in gazu.shot.all_shots_for_project(show)}
    links = gazu.client.fetch_all("entity-links")
    recast = sorted({link["entity_in_id"] for link in links} & show_shots)[0]
    cast_assets = {link["entity_out_id"] for link in links}
    fresh = next(  # cast nowhere yet: zou casts it in the shot's episode too
        a
        for a in sorted(gazu.asset.all_assets_for_project(show), key=lambda a: a["name"])
        if a["id"] not in cast_assets
    )
    gazu.casting.update_shot_casting(show, recast, [{"asset_id": fresh["id"], "nb_occurences": 3}])
    out["recast_shot"], out["recast_asset"] = recast, fresh["id"]
    milestone = gazu.client.create(
        "milestones", {"project_id": project["id"], "name": "Trailer", "date": "2026-12-24"}
    )
    out["milestone"] = milestone["id"]
    playlist = gazu.playlist.all_playlists_for_project(project)[0]
    gazu.client.delete(f"data/playlists/{playlist['id']}")
    out["deleted_playlist"] = playlist["id"]
    preview = next(p for p in gazu.client.fetch_all("preview-files") if p["task_id"] != doomed_task["id"])
    gazu.client.put(f"data/preview-files/{preview['id']}", {"validation_status": "validated"})
    out["validated_preview"] = preview["id"]

    folders = gazu.client.get(f"data/projects/{project['id']}/concept-folders")
    folder = gazu.client.post(f"data/projects/{project['id']}/concept-folders", {"name": "Round folder"})
    gazu.client.put(f"data/concept-folders/{folder['id']}", {"name": "Round folder renamed"})
    gazu.client.delete(f"data/concept-folders/{folders[0]['id']}")
    out["new_folder"], out["deleted_folder"] = folder["id"], folders[0]["id"]
    return out


def burst(count: int) -> dict[str, Any]:
    persons = sorted(gazu.person.all_persons(), key=lambda p: p["email"])
    for n in range(count):
        person = persons[n % len(persons)]
        gazu.client.put(f"data/persons/{person['id']}", {"phone": f"+33 1 {n:08d}"})
    return {"events": count}


def cancel(asset_id: str) -> dict[str, Any]:
    """zou's cancel_asset, as its Shotgun import calls it: asset:delete, the asset kept canceled."""
    from zou.app import app
    from zou.app.services import cascade_deletion_service

    with app.app_context():
        asset = cascade_deletion_service.cancel_asset(asset_id)
    return {"canceled": asset["id"]}


def main(argv: list[str]) -> int:
    command = argv[1]
    if command == "cancel":
        result = cancel(argv[2])
    else:
        connect()
        result = {"seed": seed, "round": round_of_changes}.get(command, lambda: burst(int(argv[2])))()
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
