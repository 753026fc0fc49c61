-- Likely the same work, seen by two sources with no id linking them (catalog.work_candidates):
-- best candidates first. Nothing is merged; a high score is a mapping to add at the source.
SELECT score,
       kind,
       title,
       source,
       other_title,
       other_source,
       same_start,
       same_format,
       same_episodes,
       work_id,
       other_work_id
  FROM catalog.work_candidates
 ORDER BY score DESC, title, work_id
 LIMIT 50;
