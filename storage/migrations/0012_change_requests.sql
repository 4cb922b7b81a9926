-- Change requests (issue 7, domain-billing "Customer changes"): who asked, the field diff,
-- the reason and evidence, who decided, and when it applies. Owned by customers/changes.py
-- (the evidence by customers/change_evidence.py).
CREATE TABLE change_requests (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         bigint NOT NULL REFERENCES tenants (id),
    customer_id       bigint NOT NULL REFERENCES customers (id),
    service_point_id  bigint REFERENCES service_points (id),
    submitted_by      bigint REFERENCES users (id),
    submitted_via     text NOT NULL CHECK (submitted_via IN ('office', 'field', 'customer')),
    submitted_at      timestamptz NOT NULL,
    -- {"field": {"from": old, "to": new}, ...}: "from" as it was when submitted
    diff              jsonb NOT NULL CHECK (jsonb_typeof(diff) = 'object' AND diff <> '{}'),
    reason            text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    effective_date    date NOT NULL,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'approved', 'rejected', 'applied',
                                        'cancelled')),
    decided_by        bigint REFERENCES users (id),
    decided_at        timestamptz,
    decision_note     text NOT NULL DEFAULT '' CHECK (length(decision_note) <= 2000),
    applied_at        timestamptz,
    -- Why an approved request could not be applied (a field changed since it was asked
    -- for, a value no longer valid): it stays approved, each sweep tries again, and a
    -- person may reject it; NULL once applied.
    conflict          text CHECK (length(conflict) BETWEEN 1 AND 2000),
    CHECK ((status IN ('pending', 'cancelled')) OR decided_at IS NOT NULL),
    CHECK ((status = 'applied') = (applied_at IS NOT NULL))
);
CREATE INDEX change_requests_open ON change_requests (tenant_id, status, effective_date);
CREATE INDEX change_requests_customer ON change_requests (tenant_id, customer_id);

-- Evidence files (a photo of the household registration book, a contract scan), stored
-- with their SHA-256 so that what was approved can be shown unchanged.
CREATE TABLE change_request_evidence (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id          bigint NOT NULL REFERENCES tenants (id),
    change_request_id  bigint NOT NULL REFERENCES change_requests (id),
    filename           text NOT NULL CHECK (length(filename) BETWEEN 1 AND 255),
    content_type       text NOT NULL CHECK (length(content_type) BETWEEN 1 AND 100),
    size_bytes         integer NOT NULL CHECK (size_bytes BETWEEN 1 AND 20971520),
    sha256             text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content            bytea NOT NULL,
    uploaded_by        bigint REFERENCES users (id),
    uploaded_at        timestamptz NOT NULL,
    UNIQUE (change_request_id, sha256)
);

-- Messages to customers (email, SMS), written in the transaction that causes them and sent
-- by a worker (notifications/): nothing is lost when the SMTP server or gateway is down,
-- and dedupe_key keeps one reason from sending twice.
CREATE TABLE notifications (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     bigint NOT NULL REFERENCES tenants (id),
    customer_id   bigint REFERENCES customers (id),
    channel       text NOT NULL CHECK (channel IN ('email', 'sms')),
    recipient     text NOT NULL CHECK (length(recipient) BETWEEN 3 AND 320),
    subject       text NOT NULL DEFAULT '' CHECK (length(subject) <= 300),
    body          text NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
    dedupe_key    text NOT NULL CHECK (length(dedupe_key) BETWEEN 1 AND 200),
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'sent', 'failed')),
    attempts      integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    last_error    text,
    provider_id   text,  -- the SMTP queue id or the gateway's message id
    created_at    timestamptz NOT NULL,
    sent_at       timestamptz,
    UNIQUE (tenant_id, channel, recipient, dedupe_key)
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_customer ON notifications (tenant_id, customer_id, id)
    WHERE customer_id IS NOT NULL;
