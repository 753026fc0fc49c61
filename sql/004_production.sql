-- production: projects, entities, tasks, people, comments, time spent and the change feed of Zou
-- (CGWire Kitsu) servers. Several Zou servers may be configured; `source` tells them apart.
--
-- Conventions (shared with catalog): every entity table has a surrogate `id`, the natural key
-- (source, source_id), the common sync columns, and for each reference both the surrogate FK
-- (`<x>_id`, NULL until the target is loaded) and the target's natural key (`<x>_source_id`).
-- Link tables (task_assignees) are replaced as a set whenever their owner (the task) is loaded.

CREATE TABLE production.projects (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source              text        NOT NULL,
    source_id           text        NOT NULL,
    name                text        NOT NULL,
    code                text,
    description         text,
    project_status_source_id text,
    production_type     text,
    production_style    text,
    fps                 text,
    ratio               text,
    resolution          text,
    start_date          date,
    end_date            date,
    man_days            integer,
    nb_episodes         integer,
    episode_span        integer,
    max_retakes         integer,
    homepage            text,
    is_clients_isolated boolean,
    data                jsonb,
    source_created_at   timestamptz,
    source_updated_at   timestamptz,
    content_hash        bytea       NOT NULL,
    synced_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    run_id              bigint,
    UNIQUE (source, source_id)
);
COMMENT ON TABLE production.projects IS 'Zou productions (projects); one row per (source, Zou project id).';
COMMENT ON COLUMN production.projects.id IS 'Surrogate key.';
COMMENT ON COLUMN production.projects.source IS 'Configured source name (a Zou server).';
COMMENT ON COLUMN production.projects.source_id IS 'Zou project id (UUID).';
COMMENT ON COLUMN production.projects.name IS 'Project name (unique per server).';
COMMENT ON COLUMN production.projects.code IS 'Short project code.';
COMMENT ON COLUMN production.projects.description IS 'Free-text description.';
COMMENT ON COLUMN production.projects.project_status_source_id IS 'Zou project_status_id (Open/Closed status row, not synced as a table).';
COMMENT ON COLUMN production.projects.production_type IS 'Zou production_type, e.g. short, featurefilm, tvshow.';
COMMENT ON COLUMN production.projects.production_style IS 'Zou production_style, e.g. 2d, 3d, vfx.';
COMMENT ON COLUMN production.projects.fps IS 'Frames per second as Zou stores it (a string, e.g. "25").';
COMMENT ON COLUMN production.projects.ratio IS 'Picture aspect ratio as Zou stores it, e.g. "16:9".';
COMMENT ON COLUMN production.projects.resolution IS 'Output resolution as Zou stores it, e.g. "1920x1080".';
COMMENT ON COLUMN production.projects.start_date IS 'Planned start date.';
COMMENT ON COLUMN production.projects.end_date IS 'Planned end date.';
COMMENT ON COLUMN production.projects.man_days IS 'Budgeted man-days.';
COMMENT ON COLUMN production.projects.nb_episodes IS 'Planned number of episodes.';
COMMENT ON COLUMN production.projects.episode_span IS 'Zou episode_span setting.';
COMMENT ON COLUMN production.projects.max_retakes IS 'Maximum retakes allowed per task.';
COMMENT ON COLUMN production.projects.homepage IS 'Default Kitsu UI page of the project.';
COMMENT ON COLUMN production.projects.is_clients_isolated IS 'Whether client users only see their own comments.';
COMMENT ON COLUMN production.projects.data IS 'Zou free-form project data (JSON).';
COMMENT ON COLUMN production.projects.source_created_at IS 'Zou created_at (UTC).';
COMMENT ON COLUMN production.projects.source_updated_at IS 'Zou updated_at (UTC).';
COMMENT ON COLUMN production.projects.content_hash IS 'Hash of the normalised content; unchanged rows are not rewritten.';
COMMENT ON COLUMN production.projects.synced_at IS 'When the row last changed in this database.';
COMMENT ON COLUMN production.projects.deleted_at IS 'Set on a project:delete event; NULL while the project exists.';
COMMENT ON COLUMN production.projects.run_id IS 'etl.runs.id of the run that last wrote the row.';

CREATE TABLE production.persons (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source              text        NOT NULL,
    source_id           text        NOT NULL,
    first_name          text,
    last_name           text,
    full_name           text,
    email               text,
    phone               text,
    role                text,
    position            text,
    seniority           text,
    daily_salary        numeric,
    active              boolean,
    archived            boolean,
    is_bot              boolean,
    is_guest            boolean,
    timezone            text,
    locale              text,
    studio_source_id    text,
    department_source_ids jsonb,
    source_created_at   timestamptz,
    source_updated_at   timestamptz,
    content_hash        bytea       NOT NULL,
    synced_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    run_id              bigint,
    UNIQUE (source, source_id)
);
COMMENT ON TABLE production.persons IS 'Zou users (artists, supervisors, managers, clients, bots); secrets such as passwords and OTP data are never stored.';
COMMENT ON COLUMN production.persons.id IS 'Surrogate key.';
COMMENT ON COLUMN production.persons.source IS 'Configured source name (a Zou server).';
COMMENT ON COLUMN production.persons.source_id IS 'Zou person id (UUID).';
COMMENT ON COLUMN production.persons.first_name IS 'First name.';
COMMENT ON COLUMN production.persons.last_name IS 'Last name.';
COMMENT ON COLUMN production.persons.full_name IS 'First and last name joined by a space; NULL when both are empty.';
COMMENT ON COLUMN production.persons.email IS 'Login e-mail address.';
COMMENT ON COLUMN production.persons.phone IS 'Phone number.';
COMMENT ON COLUMN production.persons.role IS 'Zou role: user (artist), supervisor, manager, admin (studio manager), client, vendor.';
COMMENT ON COLUMN production.persons.position IS 'Job position, e.g. artist, lead.';
COMMENT ON COLUMN production.persons.seniority IS 'Seniority, e.g. junior, senior.';
COMMENT ON COLUMN production.persons.daily_salary IS 'Daily salary as entered in Zou.';
COMMENT ON COLUMN production.persons.active IS 'Whether the account may log in.';
COMMENT ON COLUMN production.persons.archived IS 'Whether the person is archived.';
COMMENT ON COLUMN production.persons.is_bot IS 'Bot (API) account.';
COMMENT ON COLUMN production.persons.is_guest IS 'Guest account.';
COMMENT ON COLUMN production.persons.timezone IS 'IANA time zone of the person.';
COMMENT ON COLUMN production.persons.locale IS 'UI locale, e.g. en_US.';
COMMENT ON COLUMN production.persons.studio_source_id IS 'Zou studio_id (studios are not synced as a table).';
COMMENT ON COLUMN production.persons.department_source_ids IS 'Zou department ids the person belongs to (JSON array, sorted).';
COMMENT ON COLUMN production.persons.source_created_at IS 'Zou created_at (UTC).';
COMMENT ON COLUMN production.persons.source_updated_at IS 'Zou updated_at (UTC).';
COMMENT ON COLUMN production.persons.content_hash IS 'Hash of the normalised content; unchanged rows are not rewritten.';
COMMENT ON COLUMN production.persons.synced_at IS 'When the row last changed in this database.';
COMMENT ON COLUMN production.persons.deleted_at IS 'Set on a person:delete event.';
COMMENT ON COLUMN production.persons.run_id IS 'etl.runs.id of the run that last wrote the row.';

CREATE TABLE production.entity_types (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source              text        NOT NULL,
    source_id           text        NOT NULL,
    name                text        NOT NULL,
    kind                text        NOT NULL
                        CHECK (kind IN ('asset', 'shot', 'sequence', 'episode', 'edit', 'concept', 'scene')),
    short_name          text,
    description         text,
    archived            boolean,
    source_created_at   timestamptz,
    source_updated_at   timestamptz,
    content_hash        bytea       NOT NULL,
    synced_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    run_id              bigint,
    UNIQUE (source, source_id)
);
COMMENT ON TABLE production.entity_types IS 'Zou entity types: the temporal ones (Shot, Sequence, Episode, Edit, Concept, Scene) and asset types (Character, Prop, …).';
COMMENT ON COLUMN production.entity_types.id IS 'Surrogate key.';
COMMENT ON COLUMN production.entity_types.source IS 'Configured source name (a Zou server).';
COMMENT ON COLUMN production.entity_types.source_id IS 'Zou entity type id (UUID).';
COMMENT ON COLUMN production.entity_types.name IS 'Type name as in Zou, e.g. Shot, Character.';
COMMENT ON COLUMN production.entity_types.kind IS 'What entities of this type are: shot, sequence, episode, edit, concept, scene (by name), else asset.';
COMMENT ON COLUMN production.entity_types.short_name IS 'Short name shown in the Kitsu UI.';
COMMENT ON COLUMN production.entity_types.description IS 'Free-text description.';
COMMENT ON COLUMN production.entity_types.archived IS 'Whether the type is archived.';
COMMENT ON COLUMN production.entity_types.source_created_at IS 'Zou created_at (UTC).';
COMMENT ON COLUMN production.entity_types.source_updated_at IS 'Zou updated_at (UTC).';
COMMENT ON COLUMN production.entity_types.content_hash IS 'Hash of the normalised content; unchanged rows are not rewritten.';
COMMENT ON COLUMN production.entity_types.synced_at IS 'When the row last changed in this database.';
COMMENT ON COLUMN production.entity_types.deleted_at IS 'Set on an entity-type/asset-type delete event.';
COMMENT ON COLUMN production.entity_types.run_id IS 'etl.runs.id of the run that last wrote the row.';

CREATE TABLE production.task_types (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source              text        NOT NULL,
    source_id           text        NOT NULL,
    name                text        NOT NULL,
    short_name          text,
    description         text,
    color               text,
    priority            integer,
    for_entity          text,
    allow_timelog       boolean,
    archived            boolean,
    department_source_id text,
    source_created_at   timestamptz,
    source_updated_at   timestamptz,
    content_hash        bytea       NOT NULL,
    synced_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    run_id              bigint,
    UNIQUE (source, source_id)
);
COMMENT ON TABLE production.task_types IS 'Zou task types (Modeling, Animation, Compositing, …).';
COMMENT ON COLUMN production.task_types.id IS 'Surrogate key.';
COMMENT ON COLUMN production.task_types.source IS 'Configured source name (a Zou server).';
COMMENT ON COLUMN production.task_types.source_id IS 'Zou task type id (UUID).';
COMMENT ON COLUMN production.task_types.name IS 'Task type name.';
COMMENT ON COLUMN production.task_types.short_name IS 'Short name shown in the Kitsu UI.';
COMMENT ON COLUMN production.task_types.description IS 'Free-text description.';
COMMENT ON COLUMN production.task_types.color IS 'Display colour, e.g. #FF5733.';
COMMENT ON COLUMN production.task_types.priority IS 'Display order priority.';
COMMENT ON COLUMN production.task_types.for_entity IS 'Entity kind the type applies to: Asset, Shot, Sequence, Episode, Edit or Concept.';
COMMENT ON COLUMN production.task_types.allow_timelog IS 'Whether time can be logged on its tasks.';
COMMENT ON COLUMN production.task_types.archived IS 'Whether the type is archived.';
COMMENT ON COLUMN production.task_types.department_source_id IS 'Zou department_id (departments are not synced as a table).';
COMMENT ON COLUMN production.task_types.source_created_at IS 'Zou created_at (UTC).';
COMMENT ON COLUMN production.task_types.source_updated_at IS 'Zou updated_at (UTC).';
COMMENT ON COLUMN production.task_types.content_hash IS 'Hash of the normalised content; unchanged rows are not rewritten.';
COMMENT ON COLUMN production.task_types.synced_at IS 'When the row last changed in this database.';
COMMENT ON COLUMN production.task_types.deleted_at IS 'Set on a task-type:delete event.';
COMMENT ON COLUMN production.task_types.run_id IS 'etl.runs.id of the run that last wrote the row.';

CREATE TABLE production.task_statuses (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source              text        NOT NULL,
    source_id           text        NOT NULL,
    name                text        NOT NULL,
    short_name          text,
    description         text,
    color               text,
    priority            integer,
    is_done             boolean,
    is_wip              boolean,
    is_retake           boolean,
    is_feedback_request boolean,
    is_default          boolean,
    is_artist_allowed   boolean,
    is_client_allowed   boolean,
    for_concept         boolean,
    archived            boolean,
    source_created_at   timestamptz,
    source_updated_at   timestamptz,
    content_hash        bytea       NOT NULL,
    synced_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    run_id              bigint,
    UNIQUE (source, source_id)
);
COMMENT ON TABLE production.task_statuses IS 'Zou task statuses (Todo, WIP, WFA, Retake, Done, …) and their workflow flags.';
COMMENT ON COLUMN production.task_statuses.id IS 'Surrogate key.';
COMMENT ON COLUMN production.task_statuses.source IS 'Configured source name (a Zou server).';
COMMENT ON COLUMN production.task_statuses.source_id IS 'Zou task status id (UUID).';
COMMENT ON COLUMN production.task_statuses.name IS 'Status name.';
COMMENT ON COLUMN production.task_statuses.short_name IS 'Short name shown in the Kitsu UI, e.g. wip.';
COMMENT ON COLUMN production.task_statuses.description IS 'Free-text description.';
COMMENT ON COLUMN production.task_statuses.color IS 'Display colour.';
COMMENT ON COLUMN production.task_statuses.priority IS 'Display order priority.';
COMMENT ON COLUMN production.task_statuses.is_done IS 'Tasks in this status are finished.';
COMMENT ON COLUMN production.task_statuses.is_wip IS 'Tasks in this status are in progress.';
COMMENT ON COLUMN production.task_statuses.is_retake IS 'Setting this status counts a retake.';
COMMENT ON COLUMN production.task_statuses.is_feedback_request IS 'Tasks in this status wait for review.';
COMMENT ON COLUMN production.task_statuses.is_default IS 'Status given to new tasks.';
COMMENT ON COLUMN production.task_statuses.is_artist_allowed IS 'Artists may set this status.';
COMMENT ON COLUMN production.task_statuses.is_client_allowed IS 'Clients may set this status.';
COMMENT ON COLUMN production.task_statuses.for_concept IS 'Status used for concept tasks.';
COMMENT ON COLUMN production.task_statuses.archived IS 'Whether the status is archived.';
COMMENT ON COLUMN production.task_statuses.source_created_at IS 'Zou created_at (UTC).';
COMMENT ON COLUMN production.task_statuses.source_updated_at IS 'Zou updated_at (UTC).';
COMMENT ON COLUMN production.task_statuses.content_hash IS 'Hash of the normalised content; unchanged rows are not rewritten.';
COMMENT ON COLUMN production.task_statuses.synced_at IS 'When the row last changed in this database.';
COMMENT ON COLUMN production.task_statuses.deleted_at IS 'Set on a task-status:delete event.';
COMMENT ON COLUMN production.task_statuses.run_id IS 'etl.runs.id of the run that last wrote the row.';

CREATE TABLE production.entities (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source              text        NOT NULL,
    source_id           text        NOT NULL,
    kind                text        CHECK (kind IN ('asset', 'shot', 'sequence', 'episode', 'edit', 'concept', 'scene')),
    name                text        NOT NULL,
    code                text,
    description         text,
    status              text,
    canceled            boolean,
    is_shared           boolean,
    is_casting_standby  boolean,
    nb_frames           integer,
    nb_entities_out     integer,
    project_id          bigint      REFERENCES production.projects (id) ON DELETE SET NULL,
    project_source_id   text,
    entity_type_id      bigint      REFERENCES production.entity_types (id) ON DELETE SET NULL,
    entity_type_source_id text,
    parent_id           bigint      REFERENCES production.entities (id) ON DELETE SET NULL,
    parent_source_id    text,
    episode_id          bigint      REFERENCES production.entities (id) ON DELETE SET NULL,
    episode_source_id   text,
    ready_for_source_id text,
    preview_file_source_id text,
    created_by_source_id text,
    data                jsonb,
    source_created_at   timestamptz,
    source_updated_at   timestamptz,
    content_hash        bytea       NOT NULL,
    synced_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    run_id              bigint,
    UNIQUE (source, source_id)
);
CREATE INDEX entities_project_kind_idx ON production.entities (project_id, kind);
CREATE INDEX entities_entity_type_idx ON production.entities (entity_type_id);
CREATE INDEX entities_parent_idx ON production.entities (parent_id);
COMMENT ON TABLE production.entities IS 'Zou entities: assets, shots, sequences, episodes, edits, concepts and scenes (one Zou table, told apart by kind).';
COMMENT ON COLUMN production.entities.id IS 'Surrogate key.';
COMMENT ON COLUMN production.entities.source IS 'Configured source name (a Zou server).';
COMMENT ON COLUMN production.entities.source_id IS 'Zou entity id (UUID).';
COMMENT ON COLUMN production.entities.kind IS 'asset, shot, sequence, episode, edit, concept or scene, from the entity type name; NULL when the type was unknown at load time.';
COMMENT ON COLUMN production.entities.name IS 'Entity name, e.g. SH010, Hero.';
COMMENT ON COLUMN production.entities.code IS 'Entity code.';
COMMENT ON COLUMN production.entities.description IS 'Free-text description.';
COMMENT ON COLUMN production.entities.status IS 'Zou entity status, e.g. running, canceled.';
COMMENT ON COLUMN production.entities.canceled IS 'Whether the entity is cancelled.';
COMMENT ON COLUMN production.entities.is_shared IS 'Asset shared across projects.';
COMMENT ON COLUMN production.entities.is_casting_standby IS 'Casting on standby.';
COMMENT ON COLUMN production.entities.nb_frames IS 'Number of frames (shots).';
COMMENT ON COLUMN production.entities.nb_entities_out IS 'Number of entities cast in this one.';
COMMENT ON COLUMN production.entities.project_id IS 'production.projects.id; NULL until the project is loaded.';
COMMENT ON COLUMN production.entities.project_source_id IS 'Zou project id.';
COMMENT ON COLUMN production.entities.entity_type_id IS 'production.entity_types.id; NULL until the type is loaded.';
COMMENT ON COLUMN production.entities.entity_type_source_id IS 'Zou entity type id.';
COMMENT ON COLUMN production.entities.parent_id IS 'Parent entity (shot → sequence → episode); NULL for top-level entities or until the parent is loaded.';
COMMENT ON COLUMN production.entities.parent_source_id IS 'Zou parent_id.';
COMMENT ON COLUMN production.entities.episode_id IS 'Main episode of an episodic asset (Zou entity.source_id); NULL when none or not loaded yet.';
COMMENT ON COLUMN production.entities.episode_source_id IS 'Zou entity.source_id (the main episode).';
COMMENT ON COLUMN production.entities.ready_for_source_id IS 'Zou ready_for: the task type id the asset is ready for.';
COMMENT ON COLUMN production.entities.preview_file_source_id IS 'Zou preview_file_id of the thumbnail (preview files are not synced).';
COMMENT ON COLUMN production.entities.created_by_source_id IS 'Zou person id of the creator.';
COMMENT ON COLUMN production.entities.data IS 'Zou free-form data (JSON), e.g. frame_in, frame_out, fps.';
COMMENT ON COLUMN production.entities.source_created_at IS 'Zou created_at (UTC).';
COMMENT ON COLUMN production.entities.source_updated_at IS 'Zou updated_at (UTC).';
COMMENT ON COLUMN production.entities.content_hash IS 'Hash of the normalised content; unchanged rows are not rewritten.';
COMMENT ON COLUMN production.entities.synced_at IS 'When the row last changed in this database.';
COMMENT ON COLUMN production.entities.deleted_at IS 'Set on an asset/shot/sequence/episode/… delete event.';
COMMENT ON COLUMN production.entities.run_id IS 'etl.runs.id of the run that last wrote the row.';

CREATE TABLE production.tasks (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source              text        NOT NULL,
    source_id           text        NOT NULL,
    name                text,
    description         text,
    priority            integer,
    difficulty          integer,
    duration            numeric,
    estimation          numeric,
    completion_rate     numeric,
    retake_count        integer,
    sort_order          integer,
    nb_assets_ready     integer,
    nb_drawings         integer,
    start_date          timestamptz,
    due_date            timestamptz,
    real_start_date     timestamptz,
    end_date            timestamptz,
    done_date           timestamptz,
    last_comment_date   timestamptz,
    project_id          bigint      REFERENCES production.projects (id) ON DELETE SET NULL,
    project_source_id   text,
    task_type_id        bigint      REFERENCES production.task_types (id) ON DELETE SET NULL,
    task_type_source_id text,
    task_status_id      bigint      REFERENCES production.task_statuses (id) ON DELETE SET NULL,
    task_status_source_id text,
    entity_id           bigint      REFERENCES production.entities (id) ON DELETE SET NULL,
    entity_source_id    text,
    assigner_id         bigint      REFERENCES production.persons (id) ON DELETE SET NULL,
    assigner_source_id  text,
    last_preview_file_source_id text,
    data                jsonb,
    source_created_at   timestamptz,
    source_updated_at   timestamptz,
    content_hash        bytea       NOT NULL,
    synced_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    run_id              bigint,
    UNIQUE (source, source_id)
);
CREATE INDEX tasks_project_status_idx ON production.tasks (project_id, task_status_id);
CREATE INDEX tasks_status_idx ON production.tasks (task_status_id);
CREATE INDEX tasks_entity_idx ON production.tasks (entity_id);
CREATE INDEX tasks_task_type_idx ON production.tasks (task_type_id);
CREATE INDEX tasks_due_date_idx ON production.tasks (due_date) WHERE deleted_at IS NULL;
COMMENT ON TABLE production.tasks IS 'Zou tasks: one task type on one entity (e.g. Animation of SH010); assignees in production.task_assignees.';
COMMENT ON COLUMN production.tasks.id IS 'Surrogate key.';
COMMENT ON COLUMN production.tasks.source IS 'Configured source name (a Zou server).';
COMMENT ON COLUMN production.tasks.source_id IS 'Zou task id (UUID).';
COMMENT ON COLUMN production.tasks.name IS 'Task name (often "main").';
COMMENT ON COLUMN production.tasks.description IS 'Free-text description.';
COMMENT ON COLUMN production.tasks.priority IS 'Priority (0 normal … 3 emergency in the Kitsu UI).';
COMMENT ON COLUMN production.tasks.difficulty IS 'Difficulty (1–5).';
COMMENT ON COLUMN production.tasks.duration IS 'Time spent so far, the sum of its time spents, in Zou''s unit.';
COMMENT ON COLUMN production.tasks.estimation IS 'Estimated effort, in Zou''s unit.';
COMMENT ON COLUMN production.tasks.completion_rate IS 'Completion rate as reported by Zou.';
COMMENT ON COLUMN production.tasks.retake_count IS 'Number of retakes so far.';
COMMENT ON COLUMN production.tasks.sort_order IS 'Manual sort order.';
COMMENT ON COLUMN production.tasks.nb_assets_ready IS 'Number of cast assets ready for this task.';
COMMENT ON COLUMN production.tasks.nb_drawings IS 'Number of drawings (2D productions).';
COMMENT ON COLUMN production.tasks.start_date IS 'Planned start (UTC).';
COMMENT ON COLUMN production.tasks.due_date IS 'Due date (UTC).';
COMMENT ON COLUMN production.tasks.real_start_date IS 'When work actually started (UTC).';
COMMENT ON COLUMN production.tasks.end_date IS 'Planned end (UTC).';
COMMENT ON COLUMN production.tasks.done_date IS 'When the task reached a done status (UTC).';
COMMENT ON COLUMN production.tasks.last_comment_date IS 'Time of the latest comment (UTC).';
COMMENT ON COLUMN production.tasks.project_id IS 'production.projects.id; NULL until the project is loaded.';
COMMENT ON COLUMN production.tasks.project_source_id IS 'Zou project id.';
COMMENT ON COLUMN production.tasks.task_type_id IS 'production.task_types.id; NULL until the type is loaded.';
COMMENT ON COLUMN production.tasks.task_type_source_id IS 'Zou task type id.';
COMMENT ON COLUMN production.tasks.task_status_id IS 'production.task_statuses.id; NULL until the status is loaded.';
COMMENT ON COLUMN production.tasks.task_status_source_id IS 'Zou task status id.';
COMMENT ON COLUMN production.tasks.entity_id IS 'production.entities.id of the asset/shot/… the task is on; NULL until loaded.';
COMMENT ON COLUMN production.tasks.entity_source_id IS 'Zou entity id.';
COMMENT ON COLUMN production.tasks.assigner_id IS 'production.persons.id of who assigned it; NULL when unknown or not loaded.';
COMMENT ON COLUMN production.tasks.assigner_source_id IS 'Zou person id of the assigner.';
COMMENT ON COLUMN production.tasks.last_preview_file_source_id IS 'Zou id of the latest preview file (preview files are not synced).';
COMMENT ON COLUMN production.tasks.data IS 'Zou free-form data (JSON).';
COMMENT ON COLUMN production.tasks.source_created_at IS 'Zou created_at (UTC).';
COMMENT ON COLUMN production.tasks.source_updated_at IS 'Zou updated_at (UTC).';
COMMENT ON COLUMN production.tasks.content_hash IS 'Hash of the normalised content; unchanged rows are not rewritten.';
COMMENT ON COLUMN production.tasks.synced_at IS 'When the row last changed in this database.';
COMMENT ON COLUMN production.tasks.deleted_at IS 'Set on a task:delete event.';
COMMENT ON COLUMN production.tasks.run_id IS 'etl.runs.id of the run that last wrote the row.';

CREATE TABLE production.task_assignees (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source              text        NOT NULL,
    task_id             bigint      REFERENCES production.tasks (id) ON DELETE CASCADE,
    task_source_id      text        NOT NULL,
    person_id           bigint      REFERENCES production.persons (id) ON DELETE CASCADE,
    person_source_id    text        NOT NULL,
    synced_at           timestamptz NOT NULL DEFAULT now(),
    run_id              bigint,
    UNIQUE (source, task_source_id, person_source_id)
);
CREATE INDEX task_assignees_task_idx ON production.task_assignees (task_id);
CREATE INDEX task_assignees_person_idx ON production.task_assignees (person_id);
COMMENT ON TABLE production.task_assignees IS 'Who a task is assigned to (Zou task.assignees); replaced whenever the task is loaded.';
COMMENT ON COLUMN production.task_assignees.id IS 'Surrogate key.';
COMMENT ON COLUMN production.task_assignees.source IS 'Configured source name (a Zou server).';
COMMENT ON COLUMN production.task_assignees.task_id IS 'production.tasks.id (filled when the link is written with its task).';
COMMENT ON COLUMN production.task_assignees.task_source_id IS 'Zou task id.';
COMMENT ON COLUMN production.task_assignees.person_id IS 'production.persons.id; NULL until the person is loaded.';
COMMENT ON COLUMN production.task_assignees.person_source_id IS 'Zou person id of the assignee.';
COMMENT ON COLUMN production.task_assignees.synced_at IS 'When the link was written.';
COMMENT ON COLUMN production.task_assignees.run_id IS 'etl.runs.id of the run that wrote the link.';

CREATE TABLE production.comments (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source              text        NOT NULL,
    source_id           text        NOT NULL,
    object_type         text,
    object_source_id    text,
    task_id             bigint      REFERENCES production.tasks (id) ON DELETE SET NULL,
    task_source_id      text,
    person_id           bigint      REFERENCES production.persons (id) ON DELETE SET NULL,
    person_source_id    text,
    editor_id           bigint      REFERENCES production.persons (id) ON DELETE SET NULL,
    editor_source_id    text,
    task_status_id      bigint      REFERENCES production.task_statuses (id) ON DELETE SET NULL,
    task_status_source_id text,
    text                text,
    pinned              boolean,
    for_client          boolean,
    preview_file_source_id text,
    checklist           jsonb,
    replies             jsonb,
    links               jsonb,
    mentions            jsonb,
    attachment_file_source_ids jsonb,
    data                jsonb,
    source_created_at   timestamptz,
    source_updated_at   timestamptz,
    content_hash        bytea       NOT NULL,
    synced_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    run_id              bigint,
    UNIQUE (source, source_id)
);
CREATE INDEX comments_task_idx ON production.comments (task_id, source_created_at);
CREATE INDEX comments_person_idx ON production.comments (person_id);
COMMENT ON TABLE production.comments IS 'Zou comments (usually on tasks), with the status they set, replies and checklist.';
COMMENT ON COLUMN production.comments.id IS 'Surrogate key.';
COMMENT ON COLUMN production.comments.source IS 'Configured source name (a Zou server).';
COMMENT ON COLUMN production.comments.source_id IS 'Zou comment id (UUID).';
COMMENT ON COLUMN production.comments.object_type IS 'Zou object_type of what is commented, usually Task.';
COMMENT ON COLUMN production.comments.object_source_id IS 'Zou object_id of what is commented.';
COMMENT ON COLUMN production.comments.task_id IS 'production.tasks.id when the comment is on a task; NULL otherwise or until loaded.';
COMMENT ON COLUMN production.comments.task_source_id IS 'Zou task id when object_type is Task.';
COMMENT ON COLUMN production.comments.person_id IS 'production.persons.id of the author.';
COMMENT ON COLUMN production.comments.person_source_id IS 'Zou person id of the author.';
COMMENT ON COLUMN production.comments.editor_id IS 'production.persons.id of the last editor.';
COMMENT ON COLUMN production.comments.editor_source_id IS 'Zou person id of the last editor.';
COMMENT ON COLUMN production.comments.task_status_id IS 'production.task_statuses.id of the status the comment set.';
COMMENT ON COLUMN production.comments.task_status_source_id IS 'Zou task status id the comment set.';
COMMENT ON COLUMN production.comments.text IS 'Comment text (Markdown).';
COMMENT ON COLUMN production.comments.pinned IS 'Pinned on the task.';
COMMENT ON COLUMN production.comments.for_client IS 'Visible to clients.';
COMMENT ON COLUMN production.comments.preview_file_source_id IS 'Zou preview_file_id attached as the new revision.';
COMMENT ON COLUMN production.comments.checklist IS 'Checklist items (JSON).';
COMMENT ON COLUMN production.comments.replies IS 'Replies (JSON array as Zou stores them).';
COMMENT ON COLUMN production.comments.links IS 'Links (JSON).';
COMMENT ON COLUMN production.comments.mentions IS 'Zou person ids mentioned (JSON array, sorted).';
COMMENT ON COLUMN production.comments.attachment_file_source_ids IS 'Zou attachment file ids (JSON array, sorted).';
COMMENT ON COLUMN production.comments.data IS 'Zou free-form data (JSON).';
COMMENT ON COLUMN production.comments.source_created_at IS 'Zou created_at (UTC): when the comment was posted.';
COMMENT ON COLUMN production.comments.source_updated_at IS 'Zou updated_at (UTC).';
COMMENT ON COLUMN production.comments.content_hash IS 'Hash of the normalised content; unchanged rows are not rewritten.';
COMMENT ON COLUMN production.comments.synced_at IS 'When the row last changed in this database.';
COMMENT ON COLUMN production.comments.deleted_at IS 'Set on a comment:delete event.';
COMMENT ON COLUMN production.comments.run_id IS 'etl.runs.id of the run that last wrote the row.';

CREATE TABLE production.time_spents (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source              text        NOT NULL,
    source_id           text        NOT NULL,
    duration            numeric     NOT NULL,
    date                date        NOT NULL,
    task_id             bigint      REFERENCES production.tasks (id) ON DELETE SET NULL,
    task_source_id      text,
    person_id           bigint      REFERENCES production.persons (id) ON DELETE SET NULL,
    person_source_id    text,
    source_created_at   timestamptz,
    source_updated_at   timestamptz,
    content_hash        bytea       NOT NULL,
    synced_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    run_id              bigint,
    UNIQUE (source, source_id)
);
CREATE INDEX time_spents_person_date_idx ON production.time_spents (person_id, date);
CREATE INDEX time_spents_task_idx ON production.time_spents (task_id);
CREATE INDEX time_spents_date_idx ON production.time_spents (date);
COMMENT ON TABLE production.time_spents IS 'Time logged by a person on a task for one day (Zou time_spent).';
COMMENT ON COLUMN production.time_spents.id IS 'Surrogate key.';
COMMENT ON COLUMN production.time_spents.source IS 'Configured source name (a Zou server).';
COMMENT ON COLUMN production.time_spents.source_id IS 'Zou time spent id (UUID).';
COMMENT ON COLUMN production.time_spents.duration IS 'Time logged, as Zou stores it (the Kitsu UI writes minutes; API examples show hours such as 8.5): check your server before summing.';
COMMENT ON COLUMN production.time_spents.date IS 'Day the time was spent.';
COMMENT ON COLUMN production.time_spents.task_id IS 'production.tasks.id; NULL until the task is loaded.';
COMMENT ON COLUMN production.time_spents.task_source_id IS 'Zou task id.';
COMMENT ON COLUMN production.time_spents.person_id IS 'production.persons.id; NULL until the person is loaded.';
COMMENT ON COLUMN production.time_spents.person_source_id IS 'Zou person id.';
COMMENT ON COLUMN production.time_spents.source_created_at IS 'Zou created_at (UTC).';
COMMENT ON COLUMN production.time_spents.source_updated_at IS 'Zou updated_at (UTC).';
COMMENT ON COLUMN production.time_spents.content_hash IS 'Hash of the normalised content; unchanged rows are not rewritten.';
COMMENT ON COLUMN production.time_spents.synced_at IS 'When the row last changed in this database.';
COMMENT ON COLUMN production.time_spents.deleted_at IS 'Set on a time-spent:delete event.';
COMMENT ON COLUMN production.time_spents.run_id IS 'etl.runs.id of the run that last wrote the row.';

CREATE TABLE production.events (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source              text        NOT NULL,
    source_id           text        NOT NULL,
    name                text        NOT NULL,
    object_type         text        NOT NULL,
    action              text        NOT NULL,
    object_source_id    text,
    created_at          timestamptz NOT NULL,
    user_id             bigint      REFERENCES production.persons (id) ON DELETE SET NULL,
    user_source_id      text,
    project_id          bigint      REFERENCES production.projects (id) ON DELETE SET NULL,
    project_source_id   text,
    data                jsonb       NOT NULL,
    source_updated_at   timestamptz,
    content_hash        bytea       NOT NULL,
    synced_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    run_id              bigint,
    UNIQUE (source, source_id)
);
CREATE INDEX events_created_idx ON production.events (source, created_at DESC);
CREATE INDEX events_object_idx ON production.events (source, object_type, object_source_id);
CREATE INDEX events_project_idx ON production.events (project_id, created_at DESC);
COMMENT ON TABLE production.events IS 'The Zou change feed (/data/events/last) as fetched: who did what to which object, when.';
COMMENT ON COLUMN production.events.id IS 'Surrogate key.';
COMMENT ON COLUMN production.events.source IS 'Configured source name (a Zou server).';
COMMENT ON COLUMN production.events.source_id IS 'Zou event id (UUID); the same event fetched twice is stored once.';
COMMENT ON COLUMN production.events.name IS 'Event name <object>:<action>, e.g. task:status-changed.';
COMMENT ON COLUMN production.events.object_type IS 'Part of the name before the colon, e.g. task, asset, time-spent.';
COMMENT ON COLUMN production.events.action IS 'Part of the name after the colon, e.g. new, update, delete, assign.';
COMMENT ON COLUMN production.events.object_source_id IS 'Zou id of the object the event is about (data.<object>_id), when present.';
COMMENT ON COLUMN production.events.created_at IS 'When the event happened (UTC, second precision).';
COMMENT ON COLUMN production.events.user_id IS 'production.persons.id of who caused it; NULL for system events or until loaded.';
COMMENT ON COLUMN production.events.user_source_id IS 'Zou person id of who caused it.';
COMMENT ON COLUMN production.events.project_id IS 'production.projects.id; NULL for events without a project or until loaded.';
COMMENT ON COLUMN production.events.project_source_id IS 'Zou project id.';
COMMENT ON COLUMN production.events.data IS 'Event data as fetched (JSON; object ids only).';
COMMENT ON COLUMN production.events.source_updated_at IS 'Same as created_at: events never change.';
COMMENT ON COLUMN production.events.content_hash IS 'Hash of the normalised content.';
COMMENT ON COLUMN production.events.synced_at IS 'When the row was written.';
COMMENT ON COLUMN production.events.deleted_at IS 'Always NULL: events are never deleted by the source.';
COMMENT ON COLUMN production.events.run_id IS 'etl.runs.id of the run that fetched it.';
