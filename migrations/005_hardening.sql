-- Requests per API key in the current window, shared by every web process. Keys are kept as
-- hashes: this table must not be a place to read them from.
CREATE TABLE api_rate (
    key_hash     text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    requests     integer NOT NULL
);
