-- raw.records.payload as json (the stored text itself) instead of jsonb.
--
-- The loader serialises each record once (orjson, sorted keys) and hashes exactly those bytes, so
-- the server has nothing to convert: json keeps the text as sent (after checking it is JSON), where
-- jsonb parses it into a tree, re-encodes it and takes more space. Measured on ~5 KB Kitsu anime
-- records (PostgreSQL 15, binary COPY, 20k records, docs/ARCHITECTURE.md "raw landing"): jsonb with
-- pglz 6.4k records/s, json with pglz 16.7k/s, json with lz4 33.7k/s; 2.0 KB stored per record with
-- json against 2.7 KB with jsonb. The ->, ->> and json_* functions work as before; jsonb-only
-- operators (?, @>) need a cast: payload::jsonb.
--
-- lz4 compresses TOASTed payloads several times faster than the default pglz; servers built without
-- lz4 keep pglz (set first, so the type change below already writes lz4).
DO $$
BEGIN
    ALTER TABLE raw.records ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'raw.records.payload keeps pglz compression: this server was built without lz4';
END
$$;

ALTER TABLE raw.records ALTER COLUMN payload TYPE json USING payload::json;

COMMENT ON COLUMN raw.records.payload IS 'The record (json: the exact text the loader hashed, keys sorted) as of its last content change; volatile keys (signed URLs) may be older. Cast to jsonb for jsonb operators (payload::jsonb ? ''key'').';
COMMENT ON COLUMN raw.records.content_hash IS 'BLAKE2b-128 of payload''s text (of the payload without its volatile keys, for records that have some).';
