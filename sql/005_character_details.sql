-- Character details that Nekos gives (and catalogue sources may add later), so they are queryable
-- rather than only kept in raw.records.
ALTER TABLE catalog.characters
    ADD COLUMN gender      text,
    ADD COLUMN ages        jsonb,
    ADD COLUMN birth_date  text,
    ADD COLUMN nationality text,
    ADD COLUMN occupations jsonb,
    ADD COLUMN origin      text;

COMMENT ON COLUMN catalog.characters.gender IS 'Gender as the source states it (Nekos: free text such as female).';
COMMENT ON COLUMN catalog.characters.ages IS 'Ages the character has in its work(s), as a JSON array of numbers (Nekos ages).';
COMMENT ON COLUMN catalog.characters.birth_date IS 'Birthday as the source gives it, often without a year (Nekos MM-DD); text, not a date.';
COMMENT ON COLUMN catalog.characters.nationality IS 'Nationality or origin people, as the source states it.';
COMMENT ON COLUMN catalog.characters.occupations IS 'Occupations as a JSON array of strings.';
COMMENT ON COLUMN catalog.characters.origin IS 'Title of the work the character comes from, as the source names it (Nekos source); not a reference.';
