-- Deliberately broken migration, for testing a failed deploy.
-- The first statement succeeds; the second references a table that does not exist
-- (SQLSTATE 42P01). The runner must roll back both: no audit_log table and no
-- schema_migrations row for this file may remain.

CREATE TABLE audit_log (
    id      bigserial PRIMARY KEY,
    message text NOT NULL
);

INSERT INTO audit_log (message)
SELECT holder_name FROM account_holders;
