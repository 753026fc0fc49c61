-- Titles airing this season (status releasing), one row per work, best score first.
-- "This season" is today's season; when the data has nothing for it (an old snapshot), the
-- latest season that has releasing titles is used instead.
WITH today AS (
    SELECT CASE WHEN extract(month FROM current_date) = 12 THEN extract(year FROM current_date)::int + 1
                ELSE extract(year FROM current_date)::int END AS season_year,
           CASE WHEN extract(month FROM current_date) IN (12, 1, 2) THEN 'winter'
                WHEN extract(month FROM current_date) IN (3, 4, 5) THEN 'spring'
                WHEN extract(month FROM current_date) IN (6, 7, 8) THEN 'summer'
                ELSE 'fall' END AS season
), latest AS (
    SELECT season_year, season
      FROM catalog.works
     WHERE status = 'releasing' AND season IS NOT NULL
     ORDER BY season_year DESC,
              array_position(ARRAY['fall', 'summer', 'spring', 'winter'], season)
     LIMIT 1
), chosen AS (
    SELECT * FROM today t
     WHERE EXISTS (SELECT 1 FROM catalog.works w
                    WHERE w.status = 'releasing' AND w.season = t.season AND w.season_year = t.season_year)
    UNION ALL
    SELECT * FROM latest
     WHERE NOT EXISTS (SELECT 1 FROM catalog.works w, today t
                        WHERE w.status = 'releasing' AND w.season = t.season AND w.season_year = t.season_year)
)
SELECT w.work_id,
       min(w.title)                           AS title,
       min(w.format)                          AS format,
       c.season || ' ' || c.season_year       AS season,
       max(w.average_score)                   AS best_score,
       string_agg(DISTINCT w.source, ', ')    AS sources
  FROM catalog.works w
  JOIN chosen c ON w.season = c.season AND w.season_year = c.season_year
 WHERE w.status = 'releasing' AND w.kind = 'anime'
 GROUP BY w.work_id, c.season, c.season_year
 ORDER BY best_score DESC NULLS LAST, title
 LIMIT 50;
