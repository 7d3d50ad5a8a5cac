/** Registry tables (component 'registry'). Append-only: add a migration, never edit a shipped one. */
export const REGISTRY_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE plans (
    name   TEXT PRIMARY KEY,
    limits TEXT NOT NULL
  );
  CREATE TABLE accounts (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    plan       TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE TABLE account_tokens (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    permission TEXT NOT NULL,
    digest     BLOB NOT NULL UNIQUE,
    expire_at  INTEGER,
    created_at TEXT NOT NULL
  );
  CREATE INDEX account_tokens_account ON account_tokens(account_id);
  CREATE TABLE devices (
    id                    TEXT PRIMARY KEY,
    account_id            TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    type                  TEXT NOT NULL,
    retention_days        INTEGER,
    record_cap            INTEGER,
    tags                  TEXT NOT NULL,
    params                TEXT NOT NULL,
    payload_parser        TEXT,
    active                INTEGER NOT NULL,
    last_input            TEXT,
    last_connect          TEXT,
    last_disconnect       TEXT,
    last_disconnect_cause TEXT,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
  );
  CREATE INDEX devices_account ON devices(account_id, created_at);
  CREATE TABLE device_tokens (
    id                 TEXT PRIMARY KEY,
    device_id          TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    account_id         TEXT NOT NULL,
    name               TEXT NOT NULL,
    permission         TEXT NOT NULL,
    digest             BLOB NOT NULL UNIQUE,
    expire_at          INTEGER,
    serie_number       TEXT,
    created_at         TEXT NOT NULL,
    last_authorization TEXT
  );
  CREATE INDEX device_tokens_device ON device_tokens(device_id);
  `,
  // A counter bumped by every change that can revoke a session, so a server notices changes made
  // by another process (the CLI) with one cheap read.
  `
  CREATE TABLE registry_state (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  );
  INSERT INTO registry_state (key, value) VALUES ('revocations', 0);
  `,
];
