-- The rest of a Zou studio: project statuses, departments, preview files (their metadata, never
-- the files), metadata descriptors (the custom entity.data fields), entity links (casting), playlists,
-- schedule items and milestones; references from the existing tables to the new ones; and the
-- rows Zou removes silently with their parent (a task's previews, an entity's casting links).
--
-- Every table has the production entity columns (id, source, source_id, source_created_at,
-- source_updated_at, content_hash, synced_at, deleted_at, run_id), unique on (source, source_id).
-- References carry the surrogate id (NULL until the target is loaded, SET NULL when it goes) and
-- the target's natural key (*_source_id, same source), as in sql/004_production.sql.

-- project_statuses -------------------------------------------------------------------------------
CREATE TABLE production.project_statuses (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source              text NOT NULL,
    source_id           text NOT NULL,
    name                text NOT NULL,
    color               text,
    source_created_at   timestamptz,
    source_updated_at   timestamptz,
    content_hash        bytea NOT NULL,
    synced_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    run_id              bigint,
    UNIQUE (source, source_id)
);
COMMENT ON TABLE production.project_statuses IS 'Zou project statuses (zou init-data makes Open and Closed; /data/project-status).';
COMMENT ON COLUMN production.project_statuses.id IS 'Surrogate key.';
COMMENT ON COLUMN production.project_statuses.source IS 'Configured source name (a Zou server).';
COMMENT ON COLUMN production.project_statuses.source_id IS 'Zou project status id (UUID).';
COMMENT ON COLUMN production.project_statuses.name IS 'Status name (Open, Closed).';
COMMENT ON COLUMN production.project_statuses.color IS 'Display colour, e.g. #000000.';
COMMENT ON COLUMN production.project_statuses.source_created_at IS 'Zou created_at (UTC).';
COMMENT ON COLUMN production.project_statuses.source_updated_at IS 'Zou updated_at (UTC).';
COMMENT ON COLUMN production.project_statuses.content_hash IS 'Hash of the normalised content; unchanged rows are not rewritten.';
COMMENT ON COLUMN production.project_statuses.synced_at IS 'When the row last changed in this database.';
COMMENT ON COLUMN production.project_statuses.deleted_at IS 'Set on a project-status:delete event, or when a completed full scan no longer finds it by id.';
COMMENT ON COLUMN production.project_statuses.run_id IS 'etl.runs.id of the run that last wrote the row.';

-- departments ------------------------------------------------------------------------------------
CREATE TABLE production.departments (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source              text NOT NULL,
    source_id           text NOT NULL,
    name                text NOT NULL,
    color               text,
    archived            boolean,
    source_created_at   timestamptz,
    source_updated_at   timestamptz,
    content_hash        bytea NOT NULL,
    synced_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    run_id              bigint,
    UNIQUE (source, source_id)
);
COMMENT ON TABLE production.departments IS 'Zou departments (Modeling, Animation, …): who runs which task types (/data/departments).';
COMMENT ON COLUMN production.departments.id IS 'Surrogate key.';
COMMENT ON COLUMN production.departments.source IS 'Configured source name (a Zou server).';
COMMENT ON COLUMN production.departments.source_id IS 'Zou department id (UUID).';
COMMENT ON COLUMN production.departments.name IS 'Department name (unique in a studio).';
COMMENT ON COLUMN production.departments.color IS 'Display colour, e.g. #F57C00.';
COMMENT ON COLUMN production.departments.archived IS 'Whether the department is archived.';
COMMENT ON COLUMN production.departments.source_created_at IS 'Zou created_at (UTC).';
COMMENT ON COLUMN production.departments.source_updated_at IS 'Zou updated_at (UTC).';
COMMENT ON COLUMN production.departments.content_hash IS 'Hash of the normalised content; unchanged rows are not rewritten.';
COMMENT ON COLUMN production.departments.synced_at IS 'When the row last changed in this database.';
COMMENT ON COLUMN production.departments.deleted_at IS 'Set on a department:delete event, or when a completed full scan no longer finds it by id.';
COMMENT ON COLUMN production.departments.run_id IS 'etl.runs.id of the run that last wrote the row.';

-- preview_files ----------------------------------------------------------------------------------
CREATE TABLE production.preview_files (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source                text NOT NULL,
    source_id             text NOT NULL,
    name                  text,
    original_name         text,
    extension             text,
    description           text,
    origin                text,
    status                text,
    validation_status     text,
    revision              integer,
    position              integer,
    file_size             bigint,
    width                 integer,
    height                integer,
    duration              numeric,
    annotations           jsonb,
    task_id               bigint      REFERENCES production.tasks (id) ON DELETE SET NULL,
    task_source_id        text,
    person_id             bigint      REFERENCES production.persons (id) ON DELETE SET NULL,
    person_source_id      text,
    source_file_source_id text,
    source_created_at     timestamptz,
    source_updated_at     timestamptz,
    content_hash          bytea NOT NULL,
    synced_at             timestamptz NOT NULL DEFAULT now(),
    deleted_at            timestamptz,
    run_id                bigint,
    UNIQUE (source, source_id)
);
CREATE INDEX preview_files_task_idx ON production.preview_files (task_id);
COMMENT ON TABLE production.preview_files IS 'Zou preview files: the metadata of each revision submitted for review (/data/preview-files); the files themselves are never fetched.';
COMMENT ON COLUMN production.preview_files.id IS 'Surrogate key.';
COMMENT ON COLUMN production.preview_files.source IS 'Configured source name (a Zou server).';
COMMENT ON COLUMN production.preview_files.source_id IS 'Zou preview file id (UUID).';
COMMENT ON COLUMN production.preview_files.name IS 'Revision name, e.g. v003.';
COMMENT ON COLUMN production.preview_files.original_name IS 'File name as uploaded.';
COMMENT ON COLUMN production.preview_files.extension IS 'File extension (mp4, png, …).';
COMMENT ON COLUMN production.preview_files.description IS 'Free-text description.';
COMMENT ON COLUMN production.preview_files.origin IS 'Where the file was uploaded from (Zou preview_file.source, e.g. webgui).';
COMMENT ON COLUMN production.preview_files.status IS 'Processing state: processing, ready or broken.';
COMMENT ON COLUMN production.preview_files.validation_status IS 'Review verdict: validated, rejected or neutral.';
COMMENT ON COLUMN production.preview_files.revision IS 'Revision number within the task (1, 2, …).';
COMMENT ON COLUMN production.preview_files.position IS 'Position among the files of one revision.';
COMMENT ON COLUMN production.preview_files.file_size IS 'File size in bytes.';
COMMENT ON COLUMN production.preview_files.width IS 'Width in pixels (0 when unknown).';
COMMENT ON COLUMN production.preview_files.height IS 'Height in pixels (0 when unknown).';
COMMENT ON COLUMN production.preview_files.duration IS 'Movie duration in seconds (0 for pictures).';
COMMENT ON COLUMN production.preview_files.annotations IS 'Reviewers'' drawings and marks on the preview (JSON, as Zou stores them).';
COMMENT ON COLUMN production.preview_files.task_id IS 'production.tasks.id of the task it was submitted on; NULL until loaded.';
COMMENT ON COLUMN production.preview_files.task_source_id IS 'Zou task id.';
COMMENT ON COLUMN production.preview_files.person_id IS 'production.persons.id of who uploaded it; NULL until loaded.';
COMMENT ON COLUMN production.preview_files.person_source_id IS 'Zou person id of the uploader.';
COMMENT ON COLUMN production.preview_files.source_file_source_id IS 'Zou output_file id it was made from (output files are not synced).';
COMMENT ON COLUMN production.preview_files.source_created_at IS 'Zou created_at (UTC).';
COMMENT ON COLUMN production.preview_files.source_updated_at IS 'Zou updated_at (UTC).';
COMMENT ON COLUMN production.preview_files.content_hash IS 'Hash of the normalised content; unchanged rows are not rewritten.';
COMMENT ON COLUMN production.preview_files.synced_at IS 'When the row last changed in this database.';
COMMENT ON COLUMN production.preview_files.deleted_at IS 'Set on a preview-file:delete event, when a completed full scan no longer finds it by id, or when its task is deleted (Zou removes a task''s previews with it).';
COMMENT ON COLUMN production.preview_files.run_id IS 'etl.runs.id of the run that last wrote the row.';

-- metadata_descriptors ---------------------------------------------------------------------------
CREATE TABLE production.metadata_descriptors (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source                text NOT NULL,
    source_id             text NOT NULL,
    project_id            bigint      REFERENCES production.projects (id) ON DELETE SET NULL,
    project_source_id     text,
    entity_type           text NOT NULL,
    task_type_id          bigint      REFERENCES production.task_types (id) ON DELETE SET NULL,
    task_type_source_id   text,
    name                  text NOT NULL,
    field_name            text NOT NULL,
    data_type             text,
    choices               jsonb,
    for_client            boolean,
    position              integer,
    department_source_ids jsonb,
    source_created_at     timestamptz,
    source_updated_at     timestamptz,
    content_hash          bytea NOT NULL,
    synced_at             timestamptz NOT NULL DEFAULT now(),
    deleted_at            timestamptz,
    run_id                bigint,
    UNIQUE (source, source_id)
);
CREATE INDEX metadata_descriptors_project_idx ON production.metadata_descriptors (project_id);
COMMENT ON TABLE production.metadata_descriptors IS 'Zou metadata descriptors: the custom fields of a project''s entities (their values are in production.entities.data under field_name).';
COMMENT ON COLUMN production.metadata_descriptors.id IS 'Surrogate key.';
COMMENT ON COLUMN production.metadata_descriptors.source IS 'Configured source name (a Zou server).';
COMMENT ON COLUMN production.metadata_descriptors.source_id IS 'Zou metadata descriptor id (UUID).';
COMMENT ON COLUMN production.metadata_descriptors.project_id IS 'production.projects.id; NULL until the project is loaded.';
COMMENT ON COLUMN production.metadata_descriptors.project_source_id IS 'Zou project id.';
COMMENT ON COLUMN production.metadata_descriptors.entity_type IS 'Which entities carry the field: Asset, Shot, Sequence, Episode, Edit or Task.';
COMMENT ON COLUMN production.metadata_descriptors.task_type_id IS 'production.task_types.id for a field scoped to one task type; NULL otherwise or until loaded.';
COMMENT ON COLUMN production.metadata_descriptors.task_type_source_id IS 'Zou task type id (Task descriptors of newer servers only).';
COMMENT ON COLUMN production.metadata_descriptors.name IS 'Field label shown in the Kitsu UI.';
COMMENT ON COLUMN production.metadata_descriptors.field_name IS 'Key of the value in the entity''s data (production.entities.data ->> field_name).';
COMMENT ON COLUMN production.metadata_descriptors.data_type IS 'Value type: string, number, list, taglist, boolean, checklist (date, url, textarea, person on newer servers).';
COMMENT ON COLUMN production.metadata_descriptors.choices IS 'Allowed values of a list/taglist/checklist field (JSON array).';
COMMENT ON COLUMN production.metadata_descriptors.for_client IS 'Whether clients see the field.';
COMMENT ON COLUMN production.metadata_descriptors.position IS 'Column order in the Kitsu UI.';
COMMENT ON COLUMN production.metadata_descriptors.department_source_ids IS 'Zou ids of the departments the field is shown to (JSON array, sorted; see production.departments).';
COMMENT ON COLUMN production.metadata_descriptors.source_created_at IS 'Zou created_at (UTC).';
COMMENT ON COLUMN production.metadata_descriptors.source_updated_at IS 'Zou updated_at (UTC).';
COMMENT ON COLUMN production.metadata_descriptors.content_hash IS 'Hash of the normalised content; unchanged rows are not rewritten.';
COMMENT ON COLUMN production.metadata_descriptors.synced_at IS 'When the row last changed in this database.';
COMMENT ON COLUMN production.metadata_descriptors.deleted_at IS 'Set on a metadata-descriptor:delete event, or when a completed full scan no longer finds it by id.';
COMMENT ON COLUMN production.metadata_descriptors.run_id IS 'etl.runs.id of the run that last wrote the row.';

-- entity_links -----------------------------------------------------------------------------------
CREATE TABLE production.entity_links (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source               text NOT NULL,
    source_id            text NOT NULL,
    entity_in_id         bigint      REFERENCES production.entities (id) ON DELETE SET NULL,
    entity_in_source_id  text NOT NULL,
    entity_out_id        bigint      REFERENCES production.entities (id) ON DELETE SET NULL,
    entity_out_source_id text NOT NULL,
    nb_occurences        integer,
    label                text,
    data                 jsonb,
    source_created_at    timestamptz,
    source_updated_at    timestamptz,
    content_hash         bytea NOT NULL,
    synced_at            timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz,
    run_id               bigint,
    UNIQUE (source, source_id)
);
CREATE INDEX entity_links_in_idx ON production.entity_links (source, entity_in_source_id);
CREATE INDEX entity_links_out_idx ON production.entity_links (source, entity_out_source_id);
COMMENT ON TABLE production.entity_links IS 'Zou entity links: the casting (breakdown) of a shot or sequence, one row per asset it casts.';
COMMENT ON COLUMN production.entity_links.id IS 'Surrogate key.';
COMMENT ON COLUMN production.entity_links.source IS 'Configured source name (a Zou server).';
COMMENT ON COLUMN production.entity_links.source_id IS 'Zou entity link id (UUID; re-made when a casting is edited).';
COMMENT ON COLUMN production.entity_links.entity_in_id IS 'production.entities.id of the casting entity (the shot); NULL until loaded.';
COMMENT ON COLUMN production.entity_links.entity_in_source_id IS 'Zou entity_in_id (the shot, sequence or asset whose casting this is).';
COMMENT ON COLUMN production.entity_links.entity_out_id IS 'production.entities.id of the cast asset; NULL until loaded.';
COMMENT ON COLUMN production.entity_links.entity_out_source_id IS 'Zou entity_out_id (the cast asset).';
COMMENT ON COLUMN production.entity_links.nb_occurences IS 'How many times the asset appears (Zou spells it nb_occurences).';
COMMENT ON COLUMN production.entity_links.label IS 'Casting label, e.g. fixed or animate; NULL when empty.';
COMMENT ON COLUMN production.entity_links.data IS 'Zou free-form data (JSON).';
COMMENT ON COLUMN production.entity_links.source_created_at IS 'Zou created_at (UTC).';
COMMENT ON COLUMN production.entity_links.source_updated_at IS 'Zou updated_at (UTC).';
COMMENT ON COLUMN production.entity_links.content_hash IS 'Hash of the normalised content; unchanged rows are not rewritten.';
COMMENT ON COLUMN production.entity_links.synced_at IS 'When the row last changed in this database.';
COMMENT ON COLUMN production.entity_links.deleted_at IS 'Set on an entity-link:delete event, when a casting-update re-fetch no longer returns it, when either entity is deleted, or when a completed full scan no longer finds it by id.';
COMMENT ON COLUMN production.entity_links.run_id IS 'etl.runs.id of the run that last wrote the row.';

-- playlists --------------------------------------------------------------------------------------
CREATE TABLE production.playlists (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source               text NOT NULL,
    source_id            text NOT NULL,
    name                 text NOT NULL,
    project_id           bigint      REFERENCES production.projects (id) ON DELETE SET NULL,
    project_source_id    text,
    episode_id           bigint      REFERENCES production.entities (id) ON DELETE SET NULL,
    episode_source_id    text,
    task_type_id         bigint      REFERENCES production.task_types (id) ON DELETE SET NULL,
    task_type_source_id  text,
    for_client           boolean,
    for_entity           text,
    is_for_all           boolean,
    created_by_source_id text,
    shots                jsonb,
    source_created_at    timestamptz,
    source_updated_at    timestamptz,
    content_hash         bytea NOT NULL,
    synced_at            timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz,
    run_id               bigint,
    UNIQUE (source, source_id)
);
CREATE INDEX playlists_project_idx ON production.playlists (project_id);
COMMENT ON TABLE production.playlists IS 'Zou playlists: review sessions listing shots (or assets) with the preview to play for each.';
COMMENT ON COLUMN production.playlists.id IS 'Surrogate key.';
COMMENT ON COLUMN production.playlists.source IS 'Configured source name (a Zou server).';
COMMENT ON COLUMN production.playlists.source_id IS 'Zou playlist id (UUID).';
COMMENT ON COLUMN production.playlists.name IS 'Playlist name.';
COMMENT ON COLUMN production.playlists.project_id IS 'production.projects.id; NULL until the project is loaded.';
COMMENT ON COLUMN production.playlists.project_source_id IS 'Zou project id.';
COMMENT ON COLUMN production.playlists.episode_id IS 'production.entities.id of the episode (TV shows); NULL otherwise or until loaded.';
COMMENT ON COLUMN production.playlists.episode_source_id IS 'Zou episode id.';
COMMENT ON COLUMN production.playlists.task_type_id IS 'production.task_types.id when the playlist reviews one task type; NULL otherwise.';
COMMENT ON COLUMN production.playlists.task_type_source_id IS 'Zou task type id.';
COMMENT ON COLUMN production.playlists.for_client IS 'Whether the playlist is shared with clients.';
COMMENT ON COLUMN production.playlists.for_entity IS 'What it lists: shot, asset, sequence or episode.';
COMMENT ON COLUMN production.playlists.is_for_all IS 'Whether it covers every episode.';
COMMENT ON COLUMN production.playlists.created_by_source_id IS 'Zou person id of its creator.';
COMMENT ON COLUMN production.playlists.shots IS 'Entries in play order: [{entity_id, preview_file_id}, …] (Zou ids; JSON).';
COMMENT ON COLUMN production.playlists.source_created_at IS 'Zou created_at (UTC).';
COMMENT ON COLUMN production.playlists.source_updated_at IS 'Zou updated_at (UTC).';
COMMENT ON COLUMN production.playlists.content_hash IS 'Hash of the normalised content; unchanged rows are not rewritten.';
COMMENT ON COLUMN production.playlists.synced_at IS 'When the row last changed in this database.';
COMMENT ON COLUMN production.playlists.deleted_at IS 'Set on a playlist:delete event, or when a completed full scan no longer finds it by id.';
COMMENT ON COLUMN production.playlists.run_id IS 'etl.runs.id of the run that last wrote the row.';

-- schedule_items ---------------------------------------------------------------------------------
CREATE TABLE production.schedule_items (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source              text NOT NULL,
    source_id           text NOT NULL,
    project_id          bigint      REFERENCES production.projects (id) ON DELETE SET NULL,
    project_source_id   text,
    task_type_id        bigint      REFERENCES production.task_types (id) ON DELETE SET NULL,
    task_type_source_id text,
    object_source_id    text,
    start_date          date,
    end_date            date,
    man_days            integer,
    source_created_at   timestamptz,
    source_updated_at   timestamptz,
    content_hash        bytea NOT NULL,
    synced_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    run_id              bigint,
    UNIQUE (source, source_id)
);
CREATE INDEX schedule_items_project_idx ON production.schedule_items (project_id);
COMMENT ON TABLE production.schedule_items IS 'Zou schedule items: the planned window of one task type in a project (or in one episode, sequence or asset type of it).';
COMMENT ON COLUMN production.schedule_items.id IS 'Surrogate key.';
COMMENT ON COLUMN production.schedule_items.source IS 'Configured source name (a Zou server).';
COMMENT ON COLUMN production.schedule_items.source_id IS 'Zou schedule item id (UUID).';
COMMENT ON COLUMN production.schedule_items.project_id IS 'production.projects.id; NULL until the project is loaded.';
COMMENT ON COLUMN production.schedule_items.project_source_id IS 'Zou project id.';
COMMENT ON COLUMN production.schedule_items.task_type_id IS 'production.task_types.id; NULL until loaded.';
COMMENT ON COLUMN production.schedule_items.task_type_source_id IS 'Zou task type id.';
COMMENT ON COLUMN production.schedule_items.object_source_id IS 'Zou id of the episode, sequence or asset type the item is for; NULL for the whole project.';
COMMENT ON COLUMN production.schedule_items.start_date IS 'Planned start.';
COMMENT ON COLUMN production.schedule_items.end_date IS 'Planned end.';
COMMENT ON COLUMN production.schedule_items.man_days IS 'Planned effort in man-days.';
COMMENT ON COLUMN production.schedule_items.source_created_at IS 'Zou created_at (UTC).';
COMMENT ON COLUMN production.schedule_items.source_updated_at IS 'Zou updated_at (UTC).';
COMMENT ON COLUMN production.schedule_items.content_hash IS 'Hash of the normalised content; unchanged rows are not rewritten.';
COMMENT ON COLUMN production.schedule_items.synced_at IS 'When the row last changed in this database.';
COMMENT ON COLUMN production.schedule_items.deleted_at IS 'Set on a schedule-item:delete event, or when a completed full scan no longer finds it by id.';
COMMENT ON COLUMN production.schedule_items.run_id IS 'etl.runs.id of the run that last wrote the row.';

-- milestones -------------------------------------------------------------------------------------
CREATE TABLE production.milestones (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source              text NOT NULL,
    source_id           text NOT NULL,
    project_id          bigint      REFERENCES production.projects (id) ON DELETE SET NULL,
    project_source_id   text,
    task_type_id        bigint      REFERENCES production.task_types (id) ON DELETE SET NULL,
    task_type_source_id text,
    name                text NOT NULL,
    date                date,
    source_created_at   timestamptz,
    source_updated_at   timestamptz,
    content_hash        bytea NOT NULL,
    synced_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    run_id              bigint,
    UNIQUE (source, source_id)
);
CREATE INDEX milestones_project_idx ON production.milestones (project_id);
COMMENT ON TABLE production.milestones IS 'Zou milestones: dated goals on a project''s production schedule.';
COMMENT ON COLUMN production.milestones.id IS 'Surrogate key.';
COMMENT ON COLUMN production.milestones.source IS 'Configured source name (a Zou server).';
COMMENT ON COLUMN production.milestones.source_id IS 'Zou milestone id (UUID).';
COMMENT ON COLUMN production.milestones.project_id IS 'production.projects.id; NULL until the project is loaded.';
COMMENT ON COLUMN production.milestones.project_source_id IS 'Zou project id.';
COMMENT ON COLUMN production.milestones.task_type_id IS 'production.task_types.id of the task type it closes; NULL for the whole project.';
COMMENT ON COLUMN production.milestones.task_type_source_id IS 'Zou task type id.';
COMMENT ON COLUMN production.milestones.name IS 'Milestone name, e.g. Picture lock.';
COMMENT ON COLUMN production.milestones.date IS 'The milestone''s day.';
COMMENT ON COLUMN production.milestones.source_created_at IS 'Zou created_at (UTC).';
COMMENT ON COLUMN production.milestones.source_updated_at IS 'Zou updated_at (UTC).';
COMMENT ON COLUMN production.milestones.content_hash IS 'Hash of the normalised content; unchanged rows are not rewritten.';
COMMENT ON COLUMN production.milestones.synced_at IS 'When the row last changed in this database.';
COMMENT ON COLUMN production.milestones.deleted_at IS 'Set on a milestone:delete event, or when a completed full scan no longer finds it by id.';
COMMENT ON COLUMN production.milestones.run_id IS 'etl.runs.id of the run that last wrote the row.';

-- references from the existing tables ----------------------------------------------------------

ALTER TABLE production.projects
    ADD COLUMN project_status_id bigint REFERENCES production.project_statuses (id) ON DELETE SET NULL;
COMMENT ON COLUMN production.projects.project_status_id IS 'production.project_statuses.id (Open/Closed); NULL until the status is loaded.';
COMMENT ON COLUMN production.projects.project_status_source_id IS 'Zou project_status_id (see production.project_statuses).';

ALTER TABLE production.task_types
    ADD COLUMN department_id bigint REFERENCES production.departments (id) ON DELETE SET NULL;
COMMENT ON COLUMN production.task_types.department_id IS 'production.departments.id of the department that runs the type; NULL when none or not loaded.';
COMMENT ON COLUMN production.task_types.department_source_id IS 'Zou department_id (see production.departments).';

ALTER TABLE production.comments
    ADD COLUMN preview_file_id bigint REFERENCES production.preview_files (id) ON DELETE SET NULL;
COMMENT ON COLUMN production.comments.preview_file_id IS 'production.preview_files.id of the revision the comment submitted; NULL when none or not loaded.';

COMMENT ON COLUMN production.persons.department_source_ids IS 'Zou department ids the person belongs to (JSON array, sorted; see production.departments).';
COMMENT ON COLUMN production.entities.preview_file_source_id IS 'Zou preview_file_id of the main preview (thumbnail); join production.preview_files on (source, source_id).';
COMMENT ON COLUMN production.tasks.last_preview_file_source_id IS 'Zou id of the latest preview file; join production.preview_files on (source, source_id).';
COMMENT ON COLUMN production.tasks.start_date IS 'Planned start (UTC).';
COMMENT ON COLUMN production.tasks.due_date IS 'Deadline (UTC); a task is late when done_date, or now while it is open, is past it.';
COMMENT ON COLUMN production.tasks.real_start_date IS 'When work actually started: the first switch to the WIP status (UTC).';
COMMENT ON COLUMN production.tasks.end_date IS 'When the task was last sent for review (a feedback-request status); NULL once it left that status (UTC).';
COMMENT ON COLUMN production.tasks.done_date IS 'When the task reached its done status; NULL while it is not done (UTC).';

-- rows Zou removes with their parent, without events -------------------------------------------

CREATE FUNCTION production.retire_task_previews() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE production.preview_files SET deleted_at = NEW.deleted_at
     WHERE task_id = NEW.id AND deleted_at IS NULL;
    UPDATE raw.records r SET deleted_at = NEW.deleted_at
     WHERE r.source = NEW.source AND r.resource = 'preview_files' AND r.deleted_at IS NULL
       AND r.source_id IN (SELECT p.source_id FROM production.preview_files p WHERE p.task_id = NEW.id);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION production.retire_task_previews() IS
    'Soft-deletes the preview files of a task that was just soft-deleted (Zou deletes them with the task).';

CREATE TRIGGER tasks_retire_previews
    AFTER UPDATE OF deleted_at ON production.tasks
    FOR EACH ROW
    WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL)
    EXECUTE FUNCTION production.retire_task_previews();
COMMENT ON TRIGGER tasks_retire_previews ON production.tasks IS
    'Cascades a task''s soft delete to its preview files.';

CREATE FUNCTION production.retire_entity_links() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE production.entity_links SET deleted_at = NEW.deleted_at
     WHERE source = NEW.source AND deleted_at IS NULL
       AND (entity_in_source_id = NEW.source_id OR entity_out_source_id = NEW.source_id);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION production.retire_entity_links() IS
    'Soft-deletes the casting links from or to an entity that was just soft-deleted (Zou deletes them with it).';

CREATE TRIGGER entities_retire_links
    AFTER UPDATE OF deleted_at ON production.entities
    FOR EACH ROW
    WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL)
    EXECUTE FUNCTION production.retire_entity_links();
COMMENT ON TRIGGER entities_retire_links ON production.entities IS
    'Cascades an entity''s soft delete to the casting links that name it.';

CREATE FUNCTION production.retire_link_raw() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE raw.records SET deleted_at = NEW.deleted_at
     WHERE source = NEW.source AND resource = 'entity_links' AND source_id = NEW.source_id
       AND deleted_at IS NULL;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION production.retire_link_raw() IS
    'Marks the raw record of a casting link retired in the table (re-made casting, deleted entity), so a replay keeps it retired.';

CREATE TRIGGER entity_links_retire_raw
    AFTER UPDATE OF deleted_at ON production.entity_links
    FOR EACH ROW
    WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL)
    EXECUTE FUNCTION production.retire_link_raw();
COMMENT ON TRIGGER entity_links_retire_raw ON production.entity_links IS
    'Keeps raw.records in step with a casting link''s soft delete.';
