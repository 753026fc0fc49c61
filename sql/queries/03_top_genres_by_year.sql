-- Top 5 genres per start year (anime and manga, all sources), by number of live titles.
WITH counted AS (
    SELECT extract(year FROM m.start_date)::int AS year,
           g.name                               AS genre,
           count(DISTINCT m.id)                 AS titles
      FROM catalog.media m
      JOIN catalog.media_genres mg ON mg.media_id = m.id
      JOIN catalog.genres g ON g.id = mg.genre_id AND g.deleted_at IS NULL
     WHERE m.deleted_at IS NULL AND m.start_date IS NOT NULL
     GROUP BY 1, 2
), ranked AS (
    SELECT *, rank() OVER (PARTITION BY year ORDER BY titles DESC, genre) AS place FROM counted
)
SELECT year, place, genre, titles
  FROM ranked
 WHERE place <= 5
 ORDER BY year DESC, place
 LIMIT 100;
