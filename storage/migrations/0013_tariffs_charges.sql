-- Tariffs and charges (issue 7, domain-billing "Who is billed, and for what"). Owned by
-- billing/. Money is whole VND (bigint); VAT rates are text: 'KCT' (not subject) or a
-- percentage ('0', '5', '8', '10').
CREATE TABLE tariff_versions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants (id),
    code            text NOT NULL CHECK (code ~ '^[A-Za-z0-9._-]{1,40}$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    legal_basis     text NOT NULL CHECK (length(legal_basis) BETWEEN 1 AND 500),
    area_group      text NOT NULL CHECK (area_group ~ '^[a-z0-9_]{1,32}$'),
    customer_class  text NOT NULL CHECK (customer_class ~ '^[a-z0-9_]{1,32}$'),
    service         text NOT NULL CHECK (service IN ('collection', 'recycling', 'hazardous',
                                                     'extra', 'container_rental')),
    basis           text NOT NULL CHECK (basis IN ('per_person', 'per_household_flat',
                                                   'weight_band', 'flat_up_to_threshold_then_per_unit',
                                                   'per_container_lift', 'contract_price')),
    params          jsonb NOT NULL,  -- prices and bands, validated by billing/tariffs.py
    vat_rate        text NOT NULL CHECK (vat_rate IN ('KCT', '0', '5', '8', '10')),
    valid_from      date NOT NULL,
    valid_to        date CHECK (valid_to > valid_from),
    created_by      bigint REFERENCES users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, code)
);
CREATE INDEX tariff_versions_lookup
    ON tariff_versions (tenant_id, area_group, customer_class, service, valid_from);

-- What one service point owes for one service (and component: collection, transport) in one
-- billing period, with how it was computed. Recomputed when the terms or tariffs change,
-- until an invoice takes it (invoice_id, issue 8).
--
-- A charge run inserts up to a million rows, and every foreign key checked costs about as
-- much as the insert itself: the customer and its tenant are checked by one key, and
-- tariff_version_id is not a foreign key (versions are never deleted; billing/ writes it
-- from the versions it read in the same transaction).
CREATE TABLE charges (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id          bigint NOT NULL,
    customer_id        bigint NOT NULL,
    service_point_id   bigint NOT NULL REFERENCES service_points (id),
    period_start       date NOT NULL,
    period_end         date NOT NULL CHECK (period_end > period_start),  -- exclusive
    service            text NOT NULL,
    component          text NOT NULL,
    tariff_version_id  bigint,
    quantity           numeric(14, 3) NOT NULL,
    unit               text NOT NULL,
    amount_vnd         bigint NOT NULL CHECK (amount_vnd >= 0),
    vat_rate           text NOT NULL CHECK (vat_rate IN ('KCT', '0', '5', '8', '10')),
    -- the dated pieces of the period: [{"from", "to", "days", "quantity", "rate_vnd",
    -- "tariff_version_id", "exemption_pct"}...]; rate_vnd is monthly and exact
    detail             jsonb NOT NULL,
    computed_at        timestamptz NOT NULL,
    invoice_id         bigint,
    CONSTRAINT charges_customer_tenant FOREIGN KEY (tenant_id, customer_id)
        REFERENCES customers (tenant_id, id),
    UNIQUE (service_point_id, period_start, service, component)
);
CREATE INDEX charges_period ON charges (tenant_id, period_start);
CREATE INDEX charges_customer ON charges (tenant_id, customer_id, period_start);
