-- The customer book (issue 7): areas (địa bàn), customers and their service points with
-- everything the office keeps about them, the dated terms that charges are computed from,
-- field position captures and spreadsheet imports. Owned by customers/.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- An area (địa bàn): a ward or commune, or a part of one, served by a collector. Its
-- area_group picks the tariff (Hanoi: urban wards and rural communes pay differently).
CREATE TABLE areas (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id           bigint NOT NULL REFERENCES tenants (id),
    code                text NOT NULL CHECK (code ~ '^[A-Za-z0-9._-]{1,32}$'),
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    ward                text NOT NULL DEFAULT '' CHECK (length(ward) <= 100),
    district            text NOT NULL DEFAULT '' CHECK (length(district) <= 100),
    area_group          text NOT NULL DEFAULT 'urban' CHECK (area_group ~ '^[a-z0-9_]{1,32}$'),
    collector_staff_id  bigint REFERENCES staff (id),
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, code),
    UNIQUE (tenant_id, id)
);

ALTER TABLE customers
    ADD COLUMN phones          text[] NOT NULL DEFAULT '{}'
                               CHECK (cardinality(phones) <= 5),
    ADD COLUMN email           text CHECK (email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
    ADD COLUMN tax_code        text CHECK (tax_code ~ '^([0-9]{10}(-[0-9]{3})?|[0-9]{12})$'),
    ADD COLUMN contact_name    text NOT NULL DEFAULT '' CHECK (length(contact_name) <= 200),
    ADD COLUMN billing_address text NOT NULL DEFAULT '' CHECK (length(billing_address) <= 500),
    ADD COLUMN billing_period  text NOT NULL DEFAULT 'monthly'
                               CHECK (billing_period IN ('monthly', 'quarterly', 'yearly')),
    ADD COLUMN billing_mode    text NOT NULL DEFAULT 'postpaid'
                               CHECK (billing_mode IN ('prepaid', 'postpaid')),
    ADD COLUMN status_from     date,
    ADD COLUMN revision        integer NOT NULL DEFAULT 1 CHECK (revision >= 1),
    ADD COLUMN updated_at      timestamptz NOT NULL DEFAULT now();
UPDATE customers SET phones = ARRAY[phone] WHERE phone IS NOT NULL AND phone <> '';
ALTER TABLE customers DROP COLUMN phone;
ALTER TABLE customers ADD CONSTRAINT customers_tenant_id_key UNIQUE (tenant_id, id);

ALTER TABLE service_points
    ADD COLUMN street              text NOT NULL DEFAULT '' CHECK (length(street) <= 200),
    ADD COLUMN area_id             bigint,
    ADD COLUMN customer_class      text NOT NULL DEFAULT 'household'
                                   CHECK (customer_class ~ '^[a-z0-9_]{1,32}$'),
    ADD COLUMN category            text NOT NULL DEFAULT '' CHECK (length(category) <= 100),
    ADD COLUMN volume_m3_per_month numeric(12, 3) CHECK (volume_m3_per_month >= 0),
    ADD COLUMN weight_kg_per_month numeric(12, 2) CHECK (weight_kg_per_month >= 0),
    ADD COLUMN container_lifts_per_month integer
                                   CHECK (container_lifts_per_month BETWEEN 0 AND 10000),
    ADD COLUMN contract_price_vnd  bigint CHECK (contract_price_vnd >= 0),
    ADD COLUMN services            text[] NOT NULL DEFAULT '{collection}'
                                   CHECK (services <@ ARRAY['collection', 'recycling',
                                          'hazardous', 'extra', 'container_rental']::text[]),
    ADD COLUMN collector_staff_id  bigint REFERENCES staff (id),
    ADD COLUMN cashier_staff_id    bigint REFERENCES staff (id),
    ADD COLUMN route_code          text CHECK (route_code ~ '^[A-Za-z0-9._-]{1,32}$'),
    -- the place in its collector's book (the order the collector walks); NULL: at the end
    ADD COLUMN book_order          integer CHECK (book_order >= 1),
    ADD COLUMN position_captured_at timestamptz,
    -- the address changed and no street matched it: a collector must capture the position
    ADD COLUMN position_needs_fix  boolean NOT NULL DEFAULT false,
    ADD COLUMN status_from         date,
    -- name, codes, phones and address folded (no diacritics, lower case, đ -> d): search
    ADD COLUMN search_text         text NOT NULL DEFAULT '',
    ADD COLUMN revision            integer NOT NULL DEFAULT 1 CHECK (revision >= 1),
    ADD COLUMN updated_at          timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT service_points_area FOREIGN KEY (tenant_id, area_id)
        REFERENCES areas (tenant_id, id),
    ADD CONSTRAINT service_points_customer_tenant FOREIGN KEY (tenant_id, customer_id)
        REFERENCES customers (tenant_id, id);

-- Search: whole words through a word index (a common name's list is skipped through, not
-- read), the last word of a query as a prefix, and phone digits anywhere by trigrams. The
-- words are stored, so that a scan in code order checks them cheaply.
ALTER TABLE service_points ADD COLUMN search_words tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED;
CREATE INDEX service_points_words ON service_points USING gin (search_words);
CREATE INDEX service_points_search ON service_points USING gin (search_text gin_trgm_ops);
CREATE INDEX service_points_position ON service_points USING gist (point(lon, lat));
CREATE INDEX service_points_area_idx ON service_points (tenant_id, area_id);
CREATE INDEX service_points_book ON service_points (tenant_id, collector_staff_id, book_order);

-- What a service point is billed on, dated: valid_from inclusive, valid_to exclusive (NULL:
-- open). A change from a date closes the row in force and opens a new one, so charges for
-- any period, past or future, are computed from what held on each of its days. Rows of one
-- point never overlap (kept by customers/terms.py under the point's row lock).
CREATE TABLE service_point_terms (
    id                        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id                 bigint NOT NULL REFERENCES tenants (id),
    service_point_id          bigint NOT NULL REFERENCES service_points (id),
    valid_from                date NOT NULL,
    valid_to                  date CHECK (valid_to > valid_from),
    status                    text NOT NULL CHECK (status IN ('active', 'suspended',
                                                              'terminated')),
    customer_class            text NOT NULL,
    area_group                text NOT NULL,
    so_khau                   integer CHECK (so_khau BETWEEN 1 AND 100),
    volume_m3_per_month       numeric(12, 3) CHECK (volume_m3_per_month >= 0),
    weight_kg_per_month       numeric(12, 2) CHECK (weight_kg_per_month >= 0),
    container_lifts_per_month integer CHECK (container_lifts_per_month BETWEEN 0 AND 10000),
    contract_price_vnd        bigint CHECK (contract_price_vnd >= 0),
    services                  text[] NOT NULL,
    exemption_pct             smallint NOT NULL DEFAULT 0 CHECK (exemption_pct BETWEEN 0 AND 100),
    exemption_reason          text NOT NULL DEFAULT '',
    change_request_id         bigint,
    created_at                timestamptz NOT NULL DEFAULT now(),
    UNIQUE (service_point_id, valid_from)
);
CREATE INDEX service_point_terms_period ON service_point_terms (tenant_id, valid_from);

-- Positions recorded by collectors' phones: kept whether or not they were applied.
CREATE TABLE position_captures (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         bigint NOT NULL REFERENCES tenants (id),
    service_point_id  bigint NOT NULL REFERENCES service_points (id),
    captured_by_user  bigint REFERENCES users (id),
    staff_id          bigint REFERENCES staff (id),
    lat               double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon               double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    accuracy_m        real NOT NULL CHECK (accuracy_m >= 0),
    captured_at       timestamptz NOT NULL,  -- the phone's clock
    received_at       timestamptz NOT NULL,  -- the server's clock
    moved_m           double precision NOT NULL CHECK (moved_m >= 0),
    outcome           text NOT NULL CHECK (outcome IN ('applied', 'needs_approval',
                                                       'rejected_accuracy')),
    change_request_id bigint
);
CREATE INDEX position_captures_point ON position_captures (service_point_id, received_at);

-- Spreadsheet imports: one row per file imported, and every row it rejected with the reason.
CREATE TABLE customer_imports (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants (id),
    filename        text NOT NULL,
    file_sha256     text NOT NULL CHECK (file_sha256 ~ '^[0-9a-f]{64}$'),
    format          text NOT NULL CHECK (format IN ('csv', 'xlsx')),
    imported_by     bigint REFERENCES users (id),
    actor           text NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    rows_total      integer NOT NULL DEFAULT 0,
    rows_created    integer NOT NULL DEFAULT 0,
    rows_updated    integer NOT NULL DEFAULT 0,
    rows_unchanged  integer NOT NULL DEFAULT 0,
    rows_rejected   integer NOT NULL DEFAULT 0
);

CREATE TABLE customer_import_rejections (
    import_id   bigint NOT NULL REFERENCES customer_imports (id) ON DELETE CASCADE,
    row_number  integer NOT NULL,  -- as the spreadsheet numbers it: the header is row 1
    field       text,
    value       text,
    reason      text NOT NULL,
    PRIMARY KEY (import_id, row_number, reason)
);

-- The customer map's clusters, counted ahead per grid cell (side 360 / 2^level degrees)
-- and split by status and class, so a city-wide view sums a few hundred rows instead of a
-- million points. Rebuilt by customers/map.py when service points changed (a trigger marks
-- the tenant stale); viewports up close and filtered ones read the points themselves.
CREATE TABLE service_point_cells (
    tenant_id       bigint NOT NULL REFERENCES tenants (id),
    level           smallint NOT NULL CHECK (level BETWEEN 0 AND 24),
    cx              integer NOT NULL,
    cy              integer NOT NULL,
    status          text NOT NULL,
    customer_class  text NOT NULL,
    points          integer NOT NULL CHECK (points > 0),
    lat_sum         double precision NOT NULL,
    lon_sum         double precision NOT NULL,
    PRIMARY KEY (tenant_id, level, cx, cy, status, customer_class)
);

CREATE TABLE service_point_cells_state (
    tenant_id    bigint PRIMARY KEY REFERENCES tenants (id),
    built_at     timestamptz,
    stale_since  timestamptz  -- NULL: the cells count every point as it stands
);

CREATE FUNCTION service_point_cells_stale() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Most writes find their tenant stale already and take no lock here.
    INSERT INTO service_point_cells_state AS s (tenant_id, stale_since)
    SELECT DISTINCT c.tenant_id, now() FROM changed_points c
    WHERE NOT EXISTS (SELECT 1 FROM service_point_cells_state x
                      WHERE x.tenant_id = c.tenant_id AND x.stale_since IS NOT NULL)
    ON CONFLICT (tenant_id) DO UPDATE SET stale_since = coalesce(s.stale_since, now());
    RETURN NULL;
END;
$$;
CREATE TRIGGER service_points_cells_insert AFTER INSERT ON service_points
    REFERENCING NEW TABLE AS changed_points
    FOR EACH STATEMENT EXECUTE FUNCTION service_point_cells_stale();
CREATE TRIGGER service_points_cells_update AFTER UPDATE ON service_points
    REFERENCING NEW TABLE AS changed_points
    FOR EACH STATEMENT EXECUTE FUNCTION service_point_cells_stale();
CREATE TRIGGER service_points_cells_delete AFTER DELETE ON service_points
    REFERENCING OLD TABLE AS changed_points
    FOR EACH STATEMENT EXECUTE FUNCTION service_point_cells_stale();
