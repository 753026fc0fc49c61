-- Zou concept folders (entity type ConceptFolder, events concept-folder:new/update/delete) are an
-- entity kind of their own, not assets.
ALTER TABLE production.entity_types DROP CONSTRAINT entity_types_kind_check;
ALTER TABLE production.entity_types ADD CONSTRAINT entity_types_kind_check
    CHECK (kind IN ('asset', 'shot', 'sequence', 'episode', 'edit', 'concept', 'concept_folder', 'scene'));
ALTER TABLE production.entities DROP CONSTRAINT entities_kind_check;
ALTER TABLE production.entities ADD CONSTRAINT entities_kind_check
    CHECK (kind IN ('asset', 'shot', 'sequence', 'episode', 'edit', 'concept', 'concept_folder', 'scene'));
COMMENT ON COLUMN production.entity_types.kind IS 'What entities of this type are: shot, sequence, episode, edit, concept, concept_folder, scene (by name), else asset.';
COMMENT ON COLUMN production.entities.kind IS 'asset, shot, sequence, episode, edit, concept, concept_folder or scene, from the entity type name; NULL when the type was unknown at load time.';
