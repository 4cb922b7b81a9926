-- The append-only audit log (issue 7, domain-billing "Customer changes"): every change to
-- customers, service points, tariffs, assignments and invoices, with who, what, before and
-- after. Each entry carries the SHA-256 of the one before it in its tenant (audit/), so an
-- edited or deleted row breaks the chain; the triggers below refuse edits outright.
CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    bigint NOT NULL REFERENCES tenants (id),
    seq          bigint NOT NULL CHECK (seq >= 1),  -- 1, 2, 3... per tenant, no gaps
    at           timestamptz NOT NULL,
    actor_user   bigint REFERENCES users (id),
    actor        text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    entity       text NOT NULL CHECK (entity ~ '^[a-z_]{1,40}$'),
    entity_id    bigint NOT NULL,
    customer_id  bigint,  -- the customer it concerns, when one: "history of this customer"
    action       text NOT NULL CHECK (action ~ '^[a-z_]{1,40}$'),
    before       jsonb,
    after        jsonb,
    prev_hash    bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash         bytea NOT NULL CHECK (length(hash) = 32),
    UNIQUE (tenant_id, seq)
);
CREATE INDEX audit_log_customer ON audit_log (tenant_id, customer_id, seq)
    WHERE customer_id IS NOT NULL;
CREATE INDEX audit_log_entity ON audit_log (tenant_id, entity, entity_id, seq);

-- The head of each tenant's chain: appending locks it, so entries are chained in order.
CREATE TABLE audit_heads (
    tenant_id  bigint PRIMARY KEY REFERENCES tenants (id),
    seq        bigint NOT NULL,
    hash       bytea NOT NULL CHECK (length(hash) = 32)
);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
