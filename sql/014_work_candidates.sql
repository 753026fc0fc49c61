-- Likely same works that no id links: pairs of catalog.works rows from different works whose
-- normalised titles match, scored on start date, format and episode count. Never merged: a view
-- for people to review (sql/queries/11), and a place to find mappings a source is missing.

CREATE FUNCTION catalog.normalised_title(title text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN nullif(regexp_replace(lower(title), '[^[:alnum:]]+', '', 'g'), '');

COMMENT ON FUNCTION catalog.normalised_title(text) IS 'A title reduced for comparison: lower case, letters and digits only (NULL when nothing is left).';

CREATE VIEW catalog.work_candidates AS
WITH titled AS (
    SELECT DISTINCT w.work_id, w.media_id, w.source, w.source_kind, w.kind, w.format, w.start_date,
           w.start_precision, w.episode_count, w.title, catalog.normalised_title(t.title) AS key
      FROM catalog.works w
     CROSS JOIN LATERAL (VALUES (w.title), (w.title_romaji), (w.title_english)) AS t(title)
     WHERE catalog.normalised_title(t.title) IS NOT NULL
), pairs AS (
    SELECT DISTINCT ON (a.media_id, b.media_id)
           a.work_id AS work_id, b.work_id AS other_work_id, a.media_id, b.media_id AS other_media_id,
           a.source, b.source AS other_source, a.kind, a.title, b.title AS other_title, a.key,
           a.start_date = b.start_date AS same_start,
           a.start_date IS NOT NULL AND b.start_date IS NOT NULL
               AND date_trunc('month', a.start_date) = date_trunc('month', b.start_date) AS same_month,
           a.format = b.format AS same_format,
           a.episode_count = b.episode_count AS same_episodes
      FROM titled a
      JOIN titled b ON b.key = a.key AND b.kind = a.kind AND b.work_id > a.work_id
                   AND b.source <> a.source
     ORDER BY a.media_id, b.media_id
)
SELECT work_id, other_work_id, media_id, other_media_id, source, other_source, kind, title, other_title,
       round(0.4
             + CASE WHEN same_start THEN 0.3 WHEN same_month THEN 0.2 ELSE 0 END
             + CASE WHEN same_format THEN 0.15 ELSE 0 END
             + CASE WHEN same_episodes THEN 0.15 ELSE 0 END, 2) AS score,
       coalesce(same_start, false) AS same_start,
       coalesce(same_format, false) AS same_format,
       coalesce(same_episodes, false) AS same_episodes
  FROM pairs;

COMMENT ON VIEW catalog.work_candidates IS 'Pairs of rows from different works (catalog.works) whose normalised titles match across two sources: likely the same work without an id linking them. Scored, never merged; review them (sql/queries/11) and fix the mapping at its source.';
COMMENT ON COLUMN catalog.work_candidates.work_id IS 'work_id of the first row (the smaller of the two).';
COMMENT ON COLUMN catalog.work_candidates.other_work_id IS 'work_id of the second row.';
COMMENT ON COLUMN catalog.work_candidates.media_id IS 'catalog.media.id of the first row.';
COMMENT ON COLUMN catalog.work_candidates.other_media_id IS 'catalog.media.id of the second row.';
COMMENT ON COLUMN catalog.work_candidates.source IS 'Source of the first row.';
COMMENT ON COLUMN catalog.work_candidates.other_source IS 'Source of the second row.';
COMMENT ON COLUMN catalog.work_candidates.kind IS 'anime or manga (the same for both rows).';
COMMENT ON COLUMN catalog.work_candidates.title IS 'Display title of the first row.';
COMMENT ON COLUMN catalog.work_candidates.other_title IS 'Display title of the second row.';
COMMENT ON COLUMN catalog.work_candidates.score IS 'Likelihood 0.4-1.0: 0.4 for a matching normalised title, +0.3 same start date (+0.2 same month only), +0.15 same format, +0.15 same episode count.';
COMMENT ON COLUMN catalog.work_candidates.same_start IS 'Both rows start on the same date.';
COMMENT ON COLUMN catalog.work_candidates.same_format IS 'Both rows have the same format.';
COMMENT ON COLUMN catalog.work_candidates.same_episodes IS 'Both rows have the same episode count.';
