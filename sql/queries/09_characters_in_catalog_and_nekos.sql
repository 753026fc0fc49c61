-- Characters that appear both in a catalogue source (Kitsu/AniList) and in Nekos images, by name.
SELECT lower(c.name)                              AS character,
       string_agg(DISTINCT c.source, ', ')        AS catalogue_sources,
       count(DISTINCT ic.image_id)                AS nekos_images
  FROM catalog.characters c
  JOIN catalog.characters n ON lower(n.name) = lower(c.name) AND n.source <> c.source
  JOIN catalog.image_characters ic ON ic.character_id = n.id
 WHERE c.deleted_at IS NULL AND n.deleted_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM catalog.image_characters x WHERE x.character_id = c.id)
 GROUP BY lower(c.name)
 ORDER BY nekos_images DESC, character
 LIMIT 50;
