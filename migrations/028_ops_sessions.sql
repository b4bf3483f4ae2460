-- Sign-ins to the operator's page (web/ops/session.py). The cookie holds a random token; only its
-- SHA-256 is kept here, with the SHA-256 of the API key that signed in (a key removed from
-- API_KEYS ends its sessions) and when the session ends. Signing out deletes the row: a copied
-- cookie is refused from then on.
CREATE TABLE ops_sessions (
    token_hash text PRIMARY KEY,
    key_hash   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX ops_sessions_expiry ON ops_sessions (expires_at);
