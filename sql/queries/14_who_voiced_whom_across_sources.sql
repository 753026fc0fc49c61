-- Who voiced whom, across sources: each character of a work with its voice actors as every source
-- that states them names them (Kitsu character-voices, AniList voiceActors), most-confirmed first.
-- Works meet through catalog.works (ids and mappings, never titles); the characters of one work
-- meet by name (lower-case); languages are as each source writes them (Kitsu ja_jp, AniList
-- Japanese). AniList holds the first page of a media's characters only (sources/anilist.py).
WITH voices AS (
    SELECT w.work_id,
           w.title        AS work,
           mc.source,
           lower(c.name)  AS character_key,
           c.name         AS character,
           p.name         AS actor,
           v.language
      FROM catalog.character_voices v
      JOIN catalog.media_characters mc ON mc.id = v.media_character_id AND mc.deleted_at IS NULL
      JOIN catalog.characters c ON c.id = mc.character_id AND c.deleted_at IS NULL
      JOIN catalog.people p ON p.id = v.person_id AND p.deleted_at IS NULL
      JOIN catalog.works w ON w.media_id = mc.media_id
     WHERE v.deleted_at IS NULL
)
SELECT min(work)                                                            AS work,
       min(character)                                                       AS character,
       string_agg(DISTINCT source || ': ' || actor || coalesce(' (' || language || ')', ''), '; ')
                                                                            AS voiced_by,
       count(DISTINCT source)                                               AS sources
  FROM voices
 GROUP BY work_id, character_key
 ORDER BY sources DESC, work, character
 LIMIT 100;
