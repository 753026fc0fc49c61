-- A studio's works by year: every company credited as an animation studio (AniList studios with
-- isAnimationStudio, Kitsu productions with role studio), its works per start year and how many
-- of them it was the main studio of. Companies meet across sources by name (lower-case); a work
-- seen by two sources counts once (catalog.works). Works without a start date are left out.
SELECT min(co.name)                                                   AS studio,
       extract(year FROM m.start_date)::int                           AS year,
       count(DISTINCT w.work_id)                                      AS works,
       count(DISTINCT w.work_id) FILTER (WHERE mc.is_main)            AS as_main_studio,
       (array_agg(DISTINCT m.title ORDER BY m.title))[1:5]            AS some_titles,
       string_agg(DISTINCT co.source, ', ')                           AS named_by
  FROM catalog.media_companies mc
  JOIN catalog.companies co ON co.id = mc.company_id AND co.deleted_at IS NULL
  JOIN catalog.media m ON m.id = mc.media_id AND m.deleted_at IS NULL
  JOIN catalog.works w ON w.media_id = m.id
 WHERE mc.deleted_at IS NULL
   AND mc.role = 'studio'
   AND m.start_date IS NOT NULL
 GROUP BY lower(co.name), extract(year FROM m.start_date)
 ORDER BY studio, year
 LIMIT 200;
