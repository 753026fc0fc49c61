-- Nekos: images per artist, with how many are safe for work. One row per artist (two artists
-- with the same name stay apart: the row carries the artist's source id).
SELECT a.source,
       a.name                                        AS artist,
       a.source_id                                   AS artist_id,
       count(i.id)                                   AS images,
       count(i.id) FILTER (WHERE i.rating = 'sfw')   AS sfw,
       count(i.id) FILTER (WHERE i.rating <> 'sfw')  AS questionable_or_nsfw
  FROM catalog.artists a
  JOIN catalog.images i ON i.artist_id = a.id AND i.deleted_at IS NULL
 WHERE a.deleted_at IS NULL
 GROUP BY a.id, a.source, a.name, a.source_id
 ORDER BY images DESC, artist, artist_id
 LIMIT 50;
