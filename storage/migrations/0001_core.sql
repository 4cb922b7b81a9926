-- Tenants, the fleet (vehicles, staff, devices) and the dead-letter table.
CREATE TABLE tenants (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9-]{1,64}$'),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE vehicles (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    bigint NOT NULL REFERENCES tenants (id),
    code         text NOT NULL,          -- plate or fleet number
    name         text NOT NULL DEFAULT '',
    capacity_kg  integer CHECK (capacity_kg > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, code)
);

CREATE TABLE staff (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    code        text NOT NULL,
    full_name   text NOT NULL,
    role        text NOT NULL CHECK (role IN ('driver', 'collector', 'cashier', 'dispatcher',
                                               'accountant', 'admin')),
    phone       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, code)
);

CREATE TABLE devices (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        bigint NOT NULL REFERENCES tenants (id),
    slug             text NOT NULL CHECK (slug ~ '^[a-z0-9-]{1,64}$'),
    kind             text NOT NULL CHECK (kind IN ('truck', 'phone')),
    vehicle_id       bigint REFERENCES vehicles (id),
    staff_id         bigint REFERENCES staff (id),
    -- Mosquitto's PBKDF2-SHA512 format ($7$...), so a password file can be exported.
    credential_hash  text NOT NULL,
    active           boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    credential_set_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, slug),
    CHECK (kind <> 'truck' OR staff_id IS NULL),
    CHECK (kind <> 'phone' OR vehicle_id IS NULL)
);

-- Every rejected message or fix, with the raw bytes (cut at 64 KiB) and why.
CREATE TABLE dead_letters (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     bigint REFERENCES tenants (id),   -- NULL when the topic names no known tenant
    device_id     bigint REFERENCES devices (id),
    received_at   timestamptz NOT NULL,
    topic         text NOT NULL,
    payload       bytea NOT NULL,
    payload_size  integer NOT NULL,
    reason        text NOT NULL,
    detail        text NOT NULL DEFAULT ''
);
CREATE INDEX dead_letters_received_at ON dead_letters (received_at);
CREATE INDEX dead_letters_reason ON dead_letters (reason, received_at);
