-- People who sign in: staff of a sanitation company and its customers (issue 5).
-- Passwords are argon2id hashes; API tokens are stored as SHA-256 digests only, so a
-- leaked table does not hand out sessions.

CREATE TABLE users (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        bigint NOT NULL REFERENCES tenants (id),
    username         text NOT NULL CHECK (username ~ '^[a-z0-9._@-]{1,64}$'),
    full_name        text NOT NULL CHECK (length(full_name) BETWEEN 1 AND 200),
    role             text NOT NULL CHECK (role IN ('admin', 'dispatcher', 'accountant', 'cashier',
                                                   'collector', 'driver', 'customer')),
    -- Staff act on alerts as themselves (alerts.acknowledged_by references staff).
    staff_id         bigint REFERENCES staff (id),
    customer_id      bigint REFERENCES customers (id),
    password_hash    text NOT NULL,
    active           boolean NOT NULL DEFAULT true,
    failed_logins    integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until     timestamptz,
    password_set_at  timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, username),
    CHECK ((role = 'customer') = (customer_id IS NOT NULL)),
    CHECK ((role = 'customer') = (staff_id IS NULL))
);

CREATE TABLE api_tokens (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     bigint NOT NULL REFERENCES tenants (id),
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_sha256  bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL CHECK (expires_at > created_at),
    revoked_at    timestamptz,
    client        text NOT NULL DEFAULT '' CHECK (length(client) <= 200)
);
CREATE INDEX api_tokens_user ON api_tokens (user_id) WHERE revoked_at IS NULL;
