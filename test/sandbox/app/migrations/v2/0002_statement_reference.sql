-- Release v2: statements get an external reference (backfilled) and an index on it.

ALTER TABLE statements ADD COLUMN reference text;

UPDATE statements SET reference = 'ST-' || lpad(id::text, 6, '0');

CREATE INDEX statements_reference_idx ON statements (reference);
