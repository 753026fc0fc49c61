-- Works present in both Kitsu and AniList, with both scores side by side (0-100 scale).
-- catalog.works puts the rows of one work under one work_id (Kitsu anilist/* mapping or shared MAL id).
SELECT k.work_id,
       k.kind,
       k.title                          AS kitsu_title,
       a.title                          AS anilist_title,
       k.average_score                  AS kitsu_score,
       a.average_score                  AS anilist_score,
       round(a.average_score - k.average_score, 2) AS difference,
       k.matched_by
  FROM catalog.works k
  JOIN catalog.works a ON a.work_id = k.work_id AND a.source_kind = 'anilist'
 WHERE k.source_kind = 'kitsu'
 ORDER BY abs(coalesce(a.average_score - k.average_score, 0)) DESC, k.work_id
 LIMIT 50;
