-- Nekos: images per artist, with how many are safe for work.
SELECT a.source,
       a.name                                        AS artist,
       count(i.id)                                   AS images,
       count(i.id) FILTER (WHERE i.rating = 'sfw')   AS sfw,
       count(i.id) FILTER (WHERE i.rating <> 'sfw')  AS questionable_or_nsfw
  FROM catalog.artists a
  JOIN catalog.images i ON i.artist_id = a.id AND i.deleted_at IS NULL
 WHERE a.deleted_at IS NULL
 GROUP BY a.source, a.name
 ORDER BY images DESC, artist
 LIMIT 50;
