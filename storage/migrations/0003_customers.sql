-- Customers and the service points where their waste is collected (customers/).
-- The first slice: what the simulator and the planner need. The customers issue adds
-- tax codes, contracts, tariffs, change requests and the audit history.
CREATE TABLE customers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    code        text NOT NULL CHECK (length(code) BETWEEN 1 AND 32),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind        text NOT NULL CHECK (kind IN ('household', 'business_household', 'business',
                                              'agency')),
    phone       text,
    status      text NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'suspended', 'terminated')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, code)
);

CREATE TABLE service_points (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id            bigint NOT NULL REFERENCES tenants (id),
    customer_id          bigint NOT NULL REFERENCES customers (id),
    code                 text NOT NULL CHECK (length(code) BETWEEN 1 AND 32),
    address              text NOT NULL DEFAULT '',
    ward                 text NOT NULL DEFAULT '',
    lat                  double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon                  double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    position_accuracy_m  real CHECK (position_accuracy_m >= 0),
    position_source      text NOT NULL DEFAULT 'manual'
                         CHECK (position_source IN ('manual', 'gps', 'geocoded', 'import',
                                                    'simulated')),
    so_khau              integer CHECK (so_khau BETWEEN 1 AND 100),
    volume_m3_per_day    numeric(10, 3) CHECK (volume_m3_per_day >= 0),
    waste_kg_per_day     numeric(10, 2) NOT NULL DEFAULT 0 CHECK (waste_kg_per_day >= 0),
    status               text NOT NULL DEFAULT 'active'
                         CHECK (status IN ('active', 'suspended', 'terminated')),
    created_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, code)
);
CREATE INDEX service_points_customer ON service_points (customer_id);
