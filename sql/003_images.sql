-- Images (Nekos API v1): images, their artists, the characters they show and their tags.
--
-- Nekos categories are image tags: catalog.tags holds one row per category, catalog.image_tags
-- links images to them. Nekos characters are ordinary catalog.characters rows (002), so a
-- character is one table whichever source describes it. Same conventions as 002: entity tables
-- carry the common sync columns and UNIQUE (source, source_id); references keep both the
-- surrogate id (NULL until the target is loaded) and the target's natural key; link tables are
-- replaced as a set whenever their image is loaded.

-- artists ---------------------------------------------------------------------------------------

CREATE TABLE catalog.artists (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source            text        NOT NULL,
    source_id         text        NOT NULL,
    source_updated_at timestamptz,
    content_hash      bytea       NOT NULL,
    synced_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    run_id            bigint,
    name              text        NOT NULL,
    url               text,
    UNIQUE (source, source_id)
);
CREATE INDEX artists_name_lower_idx ON catalog.artists (lower(name));

COMMENT ON TABLE catalog.artists IS 'Artists credited on images (Nekos artists).';
COMMENT ON COLUMN catalog.artists.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.artists.source IS 'Configured source name (e.g. nekos).';
COMMENT ON COLUMN catalog.artists.source_id IS 'Artist id in the source (Nekos UUID).';
COMMENT ON COLUMN catalog.artists.source_updated_at IS 'Always NULL for Nekos (it has no last-modified time).';
COMMENT ON COLUMN catalog.artists.content_hash IS 'Hash of the normalised content; a row is rewritten only when it changes.';
COMMENT ON COLUMN catalog.artists.synced_at IS 'When the row was last written.';
COMMENT ON COLUMN catalog.artists.deleted_at IS 'Set when a completed full scan no longer saw it.';
COMMENT ON COLUMN catalog.artists.run_id IS 'Run that last wrote the row (etl.runs.id).';
COMMENT ON COLUMN catalog.artists.name IS 'Artist name.';
COMMENT ON COLUMN catalog.artists.url IS 'Artist''s page (e.g. Pixiv, Twitter).';

-- tags (Nekos categories) -----------------------------------------------------------------------

CREATE TABLE catalog.tags (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source            text        NOT NULL,
    source_id         text        NOT NULL,
    source_updated_at timestamptz,
    content_hash      bytea       NOT NULL,
    synced_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    run_id            bigint,
    name              text        NOT NULL,
    slug              text        NOT NULL,
    description       text,
    is_nsfw           boolean,
    tag_type          text,
    source_created_at timestamptz,
    UNIQUE (source, source_id)
);
CREATE INDEX tags_slug_idx ON catalog.tags (slug);

COMMENT ON TABLE catalog.tags IS 'Image tags: Nekos categories (catgirl, smile, …). Media genres are catalog.genres.';
COMMENT ON COLUMN catalog.tags.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.tags.source IS 'Configured source name (e.g. nekos).';
COMMENT ON COLUMN catalog.tags.source_id IS 'Category id in the source (Nekos UUID).';
COMMENT ON COLUMN catalog.tags.source_updated_at IS 'Always NULL for Nekos (it has no last-modified time).';
COMMENT ON COLUMN catalog.tags.content_hash IS 'Hash of the normalised content; a row is rewritten only when it changes.';
COMMENT ON COLUMN catalog.tags.synced_at IS 'When the row was last written.';
COMMENT ON COLUMN catalog.tags.deleted_at IS 'Set when a completed full scan no longer saw it.';
COMMENT ON COLUMN catalog.tags.run_id IS 'Run that last wrote the row (etl.runs.id).';
COMMENT ON COLUMN catalog.tags.name IS 'Tag name as the source writes it.';
COMMENT ON COLUMN catalog.tags.slug IS 'Lower-case ASCII slug of the name (words joined by -), for matching across sources.';
COMMENT ON COLUMN catalog.tags.description IS 'What the tag means.';
COMMENT ON COLUMN catalog.tags.is_nsfw IS 'The source flags the tag itself as not safe for work.';
COMMENT ON COLUMN catalog.tags.tag_type IS 'Kind of tag as the source writes it (Nekos category type, e.g. character, setting, format).';
COMMENT ON COLUMN catalog.tags.source_created_at IS 'When the source created it (Nekos createdAt).';

-- images ----------------------------------------------------------------------------------------

CREATE TABLE catalog.images (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source            text        NOT NULL,
    source_id         text        NOT NULL,
    source_updated_at timestamptz,
    content_hash      bytea       NOT NULL,
    synced_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    run_id            bigint,
    url               text,
    url_expires_at    timestamptz,
    rating            text        CHECK (rating IN ('sfw', 'questionable', 'nsfw')),
    original          boolean,
    source_name       text,
    source_url        text,
    width             integer     CHECK (width >= 0),
    height            integer     CHECK (height >= 0),
    aspect_ratio      text,
    orientation       text        CHECK (orientation IN ('landscape', 'portrait', 'square')),
    mimetype          text,
    size_bytes        bigint      CHECK (size_bytes >= 0),
    color             text,
    etag              text,
    artist_id         bigint      REFERENCES catalog.artists (id) ON DELETE SET NULL,
    artist_source_id  text,
    source_created_at timestamptz,
    UNIQUE (source, source_id)
);
CREATE INDEX images_artist_idx ON catalog.images (artist_id);
CREATE INDEX images_artist_source_idx ON catalog.images (source, artist_source_id);
CREATE INDEX images_rating_idx ON catalog.images (rating);
CREATE INDEX images_orientation_idx ON catalog.images (orientation);

COMMENT ON TABLE catalog.images IS 'Images (Nekos API v1) with their file metadata, rating and artist; characters and tags in the link tables.';
COMMENT ON COLUMN catalog.images.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.images.source IS 'Configured source name (e.g. nekos).';
COMMENT ON COLUMN catalog.images.source_id IS 'Image id in the source (Nekos UUID).';
COMMENT ON COLUMN catalog.images.source_updated_at IS 'Always NULL for Nekos (it has no last-modified time).';
COMMENT ON COLUMN catalog.images.content_hash IS 'Hash of the normalised content without url and url_expires_at (re-signed on every call), so a re-scan rewrites only real changes.';
COMMENT ON COLUMN catalog.images.synced_at IS 'When the row was last written.';
COMMENT ON COLUMN catalog.images.deleted_at IS 'Set when a completed full scan no longer saw it.';
COMMENT ON COLUMN catalog.images.run_id IS 'Run that last wrote the row (etl.runs.id).';
COMMENT ON COLUMN catalog.images.url IS 'Signed download URL as of the last content change; it expires (see url_expires_at): download promptly or re-fetch.';
COMMENT ON COLUMN catalog.images.url_expires_at IS 'When url stops working (Nekos meta.expires, UTC).';
COMMENT ON COLUMN catalog.images.rating IS 'Content rating: sfw, questionable or nsfw (Nekos nsfw field).';
COMMENT ON COLUMN catalog.images.original IS 'true = original artwork, false = edited/derived; NULL = unknown.';
COMMENT ON COLUMN catalog.images.source_name IS 'Name of the site the image was taken from (Nekos source.name).';
COMMENT ON COLUMN catalog.images.source_url IS 'Page the image was taken from (Nekos source.url).';
COMMENT ON COLUMN catalog.images.width IS 'Width in pixels.';
COMMENT ON COLUMN catalog.images.height IS 'Height in pixels.';
COMMENT ON COLUMN catalog.images.aspect_ratio IS 'Aspect ratio as the source writes it (e.g. 16:9).';
COMMENT ON COLUMN catalog.images.orientation IS 'landscape, portrait or square.';
COMMENT ON COLUMN catalog.images.mimetype IS 'MIME type of the file, e.g. image/png.';
COMMENT ON COLUMN catalog.images.size_bytes IS 'File size in bytes.';
COMMENT ON COLUMN catalog.images.color IS 'Dominant colour as the source writes it (e.g. #e5c5a1).';
COMMENT ON COLUMN catalog.images.etag IS 'Storage ETag of the file: changes when the file itself changes.';
COMMENT ON COLUMN catalog.images.artist_id IS 'The artist (catalog.artists.id); NULL when none or not loaded yet.';
COMMENT ON COLUMN catalog.images.artist_source_id IS 'The artist''s source_id.';
COMMENT ON COLUMN catalog.images.source_created_at IS 'When the source added the image (Nekos createdAt).';

-- image_characters + image_tags (links) ---------------------------------------------------------

CREATE TABLE catalog.image_characters (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source              text        NOT NULL,
    image_id            bigint      REFERENCES catalog.images (id) ON DELETE CASCADE,
    image_source_id     text        NOT NULL,
    character_id        bigint      REFERENCES catalog.characters (id) ON DELETE CASCADE,
    character_source_id text        NOT NULL,
    synced_at           timestamptz NOT NULL DEFAULT now(),
    run_id              bigint,
    UNIQUE (source, image_source_id, character_source_id)
);
CREATE INDEX image_characters_image_idx ON catalog.image_characters (image_id);
CREATE INDEX image_characters_character_idx ON catalog.image_characters (character_id);

COMMENT ON TABLE catalog.image_characters IS 'Which characters an image shows. Replaced as a set when the image is loaded.';
COMMENT ON COLUMN catalog.image_characters.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.image_characters.source IS 'Configured source name.';
COMMENT ON COLUMN catalog.image_characters.image_id IS 'The image (catalog.images.id).';
COMMENT ON COLUMN catalog.image_characters.image_source_id IS 'The image''s source_id.';
COMMENT ON COLUMN catalog.image_characters.character_id IS 'The character (catalog.characters.id); NULL until it is loaded.';
COMMENT ON COLUMN catalog.image_characters.character_source_id IS 'The character''s source_id.';
COMMENT ON COLUMN catalog.image_characters.synced_at IS 'When the row was written.';
COMMENT ON COLUMN catalog.image_characters.run_id IS 'Run that wrote the row.';

CREATE TABLE catalog.image_tags (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source          text        NOT NULL,
    image_id        bigint      REFERENCES catalog.images (id) ON DELETE CASCADE,
    image_source_id text        NOT NULL,
    tag_id          bigint      REFERENCES catalog.tags (id) ON DELETE CASCADE,
    tag_source_id   text        NOT NULL,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    run_id          bigint,
    UNIQUE (source, image_source_id, tag_source_id)
);
CREATE INDEX image_tags_image_idx ON catalog.image_tags (image_id);
CREATE INDEX image_tags_tag_idx ON catalog.image_tags (tag_id);

COMMENT ON TABLE catalog.image_tags IS 'Which tags (Nekos categories) an image has. Replaced as a set when the image is loaded.';
COMMENT ON COLUMN catalog.image_tags.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.image_tags.source IS 'Configured source name.';
COMMENT ON COLUMN catalog.image_tags.image_id IS 'The image (catalog.images.id).';
COMMENT ON COLUMN catalog.image_tags.image_source_id IS 'The image''s source_id.';
COMMENT ON COLUMN catalog.image_tags.tag_id IS 'The tag (catalog.tags.id); NULL until it is loaded.';
COMMENT ON COLUMN catalog.image_tags.tag_source_id IS 'The tag''s source_id.';
COMMENT ON COLUMN catalog.image_tags.synced_at IS 'When the row was written.';
COMMENT ON COLUMN catalog.image_tags.run_id IS 'Run that wrote the row.';
