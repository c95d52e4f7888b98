-- The CRM tables config/examples/crm-postgres/mesh.yaml reads, with a few sample rows.
--   createdb crm && psql -v ON_ERROR_STOP=1 -d crm -f config/examples/crm-postgres/crm.sql
CREATE TABLE account (
    id           BIGINT PRIMARY KEY,
    display_name TEXT NOT NULL,
    country      TEXT,
    created_at   TIMESTAMPTZ,
    credit_limit NUMERIC(12, 2)
);

CREATE TABLE contact (
    contact_id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES account (id),
    email      TEXT,
    phone      TEXT
);

INSERT INTO account VALUES
    (1, 'Acme', 'DE', '2024-01-02 03:04:05+00', 1000.50),
    (2, 'Globex', 'US', '2024-02-01 00:00:00+00', NULL),
    (3, 'Initech', 'DE', NULL, 250.00);

INSERT INTO contact VALUES
    (10, 1, 'wile@acme.example', '+49 30 1234567'),
    (11, 2, 'hank@globex.example', '+1 555 0100');
