-- Sequels missing from a catalogue: a source names work B as the sequel of work A (Kitsu
-- media-relationships, AniList relations), and a catalogue holds A but not B: either the naming
-- source itself (the sequel is not in its catalogue, or was deleted), or another source that has A.
-- Works meet across sources through catalog.works (ids and mappings, never titles).
WITH sequels AS (
    SELECT r.source                  AS named_by,
           a.work_id                 AS work_id,
           a.title                   AS work,
           r.related_media_source_id AS sequel_key,
           b.work_id                 AS sequel_work_id,
           b.title                   AS sequel
      FROM catalog.media_relations r
      JOIN catalog.works a ON a.media_id = r.media_id
      LEFT JOIN catalog.works b ON b.media_id = r.related_media_id
     WHERE r.deleted_at IS NULL
       AND r.relation = 'sequel'
)
SELECT s.named_by                       AS catalogue,
       s.work,
       coalesce(s.sequel, s.sequel_key) AS missing_sequel,
       s.named_by
  FROM sequels s
 WHERE s.sequel_work_id IS NULL          -- not (or no longer) in the naming source's own catalogue
UNION ALL
SELECT w.source                         AS catalogue,
       s.work,
       s.sequel                         AS missing_sequel,
       s.named_by
  FROM sequels s
  JOIN catalog.works w ON w.work_id = s.work_id AND w.source <> s.named_by
 WHERE s.sequel_work_id IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM catalog.works x WHERE x.work_id = s.sequel_work_id AND x.source = w.source)
 ORDER BY catalogue, work, missing_sequel
 LIMIT 100;
