-- Release v1: the reconciliation product's core tables, with seed rows.
-- Applied by `api migrate` inside one transaction together with its schema_migrations row.

CREATE TABLE accounts (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    currency    char(3) NOT NULL DEFAULT 'EUR',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE statements (
    id           bigserial PRIMARY KEY,
    account_id   bigint NOT NULL REFERENCES accounts (id),
    period_start date NOT NULL,
    period_end   date NOT NULL,
    balance      numeric(14, 2) NOT NULL,
    CHECK (period_end >= period_start)
);

CREATE TABLE reconciliations (
    id            bigserial PRIMARY KEY,
    statement_id  bigint NOT NULL REFERENCES statements (id),
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'matched', 'disputed')),
    reconciled_at timestamptz
);

INSERT INTO accounts (name, currency) VALUES
    ('Acme Operating', 'EUR'),
    ('Acme Payroll', 'EUR'),
    ('Globex Treasury', 'USD');

INSERT INTO statements (account_id, period_start, period_end, balance)
SELECT a.id, s.period_start, s.period_end, s.balance
FROM (VALUES
    ('Acme Operating',  DATE '2024-01-01', DATE '2024-01-31', 15234.10),
    ('Acme Operating',  DATE '2024-02-01', DATE '2024-02-29', 16890.55),
    ('Acme Payroll',    DATE '2024-01-01', DATE '2024-01-31', 80412.00),
    ('Globex Treasury', DATE '2024-01-01', DATE '2024-01-31', 1250000.00)
) AS s (account, period_start, period_end, balance)
JOIN accounts a ON a.name = s.account;

INSERT INTO reconciliations (statement_id, status, reconciled_at)
SELECT st.id,
       CASE WHEN st.period_start = DATE '2024-01-01' THEN 'matched' ELSE 'pending' END,
       CASE WHEN st.period_start = DATE '2024-01-01' THEN TIMESTAMPTZ '2024-02-05 10:00:00+00' END
FROM statements st
WHERE st.account_id IN (SELECT id FROM accounts WHERE name LIKE 'Acme%');
