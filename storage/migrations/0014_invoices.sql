-- Invoices (issue 8, domain-billing "E-invoices"): the seller's details, invoice series and
-- their numbers, billing periods and runs, invoices with their lines and references,
-- error notices (form 04/SS-HĐĐT), buyers' agreements, adjustment proposals, the
-- e-invoice provider's attempts and printing. Owned by billing/. Money is whole VND.

-- The company as the seller printed on every invoice.
CREATE TABLE sellers (
    tenant_id     bigint PRIMARY KEY REFERENCES tenants (id),
    legal_name    text NOT NULL CHECK (length(legal_name) BETWEEN 1 AND 300),
    tax_code      text NOT NULL CHECK (tax_code ~ '^([0-9]{10}(-[0-9]{3})?|[0-9]{12})$'),
    address       text NOT NULL CHECK (length(address) BETWEEN 1 AND 500),
    phone         text NOT NULL DEFAULT '' CHECK (length(phone) <= 50),
    email         text NOT NULL DEFAULT '' CHECK (length(email) <= 320),
    bank_account  text NOT NULL DEFAULT '' CHECK (length(bank_account) <= 100),
    bank_name     text NOT NULL DEFAULT '' CHECK (length(bank_name) <= 200),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- An invoice series: template digit (1 VAT invoice, 2 sales invoice, 5 other e-documents,
-- 6 delivery notes) and six-character symbol (C/K, two-digit year, kind letter, two
-- letters chosen by the seller). Numbers 1..99,999,999 are given out in order under a lock
-- on this row; next_number > 1 means used, and a used series cannot be edited. A new year
-- is a new row (the symbol carries the year), made when the first invoice of the year is
-- issued on the previous year's series.
CREATE TABLE invoice_series (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants (id),
    template        text NOT NULL CHECK (template IN ('1', '2', '5', '6')),
    symbol          text NOT NULL CHECK (symbol ~ '^[CK][0-9]{2}[TDLMNBGH][A-Z]{2}$'),
    year            integer NOT NULL CHECK (year BETWEEN 2000 AND 2099),
    name            text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    next_number     integer NOT NULL DEFAULT 1 CHECK (next_number BETWEEN 1 AND 100000000),
    last_issued_at  timestamptz,
    active          boolean NOT NULL DEFAULT true,
    rolled_from_id  bigint REFERENCES invoice_series (id),
    created_by      bigint REFERENCES users (id),
    created_at      timestamptz NOT NULL,
    UNIQUE (tenant_id, template, symbol),
    UNIQUE (tenant_id, id),
    CHECK (substr(symbol, 2, 2)::integer = year % 100)
);

-- A billing period of one kind (monthly, quarterly, yearly) is open until the office closes
-- it: closed, no billing run or draft touches it again.
CREATE TABLE billing_periods (
    tenant_id       bigint NOT NULL REFERENCES tenants (id),
    billing_period  text NOT NULL CHECK (billing_period IN ('monthly', 'quarterly', 'yearly')),
    period_start    date NOT NULL,
    period_end      date NOT NULL CHECK (period_end > period_start),
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    closed_at       timestamptz,
    closed_by       bigint REFERENCES users (id),
    PRIMARY KEY (tenant_id, billing_period, period_start),
    CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);

CREATE TABLE billing_runs (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id           bigint NOT NULL REFERENCES tenants (id),
    billing_period      text NOT NULL CHECK (billing_period IN ('monthly', 'quarterly', 'yearly')),
    period_start        date NOT NULL,
    period_end          date NOT NULL CHECK (period_end > period_start),
    series_id           bigint NOT NULL REFERENCES invoice_series (id),
    started_by          bigint REFERENCES users (id),
    started_at          timestamptz NOT NULL,
    finished_at         timestamptz,
    points              integer NOT NULL DEFAULT 0,
    invoices_drafted    integer NOT NULL DEFAULT 0,
    drafts_replaced     integer NOT NULL DEFAULT 0,  -- drafts of an earlier run, made again
    postpaid_waiting    integer NOT NULL DEFAULT 0,  -- postpaid customers: period not over
    charges_invoiced    integer NOT NULL DEFAULT 0,  -- already on an issued invoice
    total_vnd           bigint NOT NULL DEFAULT 0,
    problems_count      integer NOT NULL DEFAULT 0,
    problems            jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX billing_runs_period ON billing_runs (tenant_id, period_start, id);

-- An invoice. kind: original, adjustment (điều chỉnh) or replacement (thay thế); origin:
-- period (a billing run), adhoc (work outside the plan), manual, correction. The buyer and
-- seller are copied in when drafted and issued: what was issued stays as it was.
-- template, symbol, number, issue_date and seller_tax_code are set once, at issue.
CREATE TABLE invoices (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id           bigint NOT NULL,
    customer_id         bigint NOT NULL,
    kind                text NOT NULL DEFAULT 'original'
                        CHECK (kind IN ('original', 'adjustment', 'replacement')),
    origin              text NOT NULL CHECK (origin IN ('period', 'adhoc', 'manual', 'correction')),
    status              text NOT NULL DEFAULT 'draft'
                        CHECK (status IN ('draft', 'issued', 'sent', 'coded', 'delivered',
                                          'cancelled', 'adjusted', 'replaced')),
    billing_period      text CHECK (billing_period IN ('monthly', 'quarterly', 'yearly')),
    period_start        date,
    period_end          date CHECK (period_end > period_start),
    billing_run_id      bigint REFERENCES billing_runs (id),
    series_id           bigint NOT NULL,
    template            text,
    symbol              text,
    number              integer CHECK (number BETWEEN 1 AND 99999999),
    issue_date          date,
    issued_at           timestamptz,
    issued_by           bigint REFERENCES users (id),
    seller_tax_code     text,
    seller              jsonb,  -- name, tax code, address, bank as issued
    buyer_code          text NOT NULL,
    buyer_name          text NOT NULL CHECK (length(buyer_name) BETWEEN 1 AND 300),
    buyer_tax_code      text,
    buyer_address       text NOT NULL DEFAULT '',
    buyer_email         text,
    buyer_kind          text NOT NULL,
    payment_method      text NOT NULL DEFAULT 'TM/CK' CHECK (length(payment_method) <= 50),
    note                text NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    subtotal_vnd        bigint NOT NULL DEFAULT 0,
    vat_vnd             bigint NOT NULL DEFAULT 0,
    total_vnd           bigint NOT NULL DEFAULT 0,
    -- corrections: why, and (for an adjustment of several invoices) the list form 01/BK-ĐCTT
    correction_reason   text CHECK (length(correction_reason) BETWEEN 1 AND 2000),
    -- the e-invoice provider (billing/einvoice): the idempotent send and the tax code
    provider_ref        text,
    authority_code      text,
    send_attempts       integer NOT NULL DEFAULT 0,
    next_send_at        timestamptz,
    last_send_error     text,
    sent_at             timestamptz,
    coded_at            timestamptz,
    delivered_at        timestamptz,
    delivery_channel    text CHECK (delivery_channel IN ('email', 'print', 'portal', 'handover')),
    cancelled_at        timestamptz,
    cancelled_by        bigint REFERENCES users (id),
    -- printing: the first print, reprints counted
    print_count         integer NOT NULL DEFAULT 0 CHECK (print_count >= 0),
    last_printed_at     timestamptz,
    last_printed_by     bigint REFERENCES users (id),
    revision            integer NOT NULL DEFAULT 1 CHECK (revision >= 1),
    created_by          bigint REFERENCES users (id),
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    CONSTRAINT invoices_customer FOREIGN KEY (tenant_id, customer_id)
        REFERENCES customers (tenant_id, id),
    CONSTRAINT invoices_series FOREIGN KEY (tenant_id, series_id)
        REFERENCES invoice_series (tenant_id, id),
    UNIQUE (tenant_id, id),
    -- (seller tax code, template, symbol, number) is never used twice
    UNIQUE (seller_tax_code, template, symbol, number),
    -- a number exactly when issued; a draft has none, nothing else lacks one
    CHECK ((status = 'draft') = (number IS NULL)),
    CHECK ((number IS NULL) = (template IS NULL) AND (number IS NULL) = (symbol IS NULL)
           AND (number IS NULL) = (issue_date IS NULL)
           AND (number IS NULL) = (seller_tax_code IS NULL)
           AND (number IS NULL) = (issued_at IS NULL)),
    CHECK (kind = 'adjustment' OR (subtotal_vnd >= 0 AND vat_vnd >= 0 AND total_vnd >= 0)),
    CHECK (total_vnd = subtotal_vnd + vat_vnd),
    CHECK ((kind = 'original') = (origin <> 'correction')),
    CHECK ((origin = 'period') = (period_start IS NOT NULL AND billing_period IS NOT NULL)
           OR origin <> 'period')
);
-- One draft per customer and period: a billing run run again replaces it.
CREATE UNIQUE INDEX invoices_one_period_draft
    ON invoices (tenant_id, customer_id, billing_period, period_start)
    WHERE origin = 'period' AND status = 'draft';
CREATE INDEX invoices_period ON invoices (tenant_id, period_start, status);
CREATE INDEX invoices_customer ON invoices (tenant_id, customer_id, id);
CREATE INDEX invoices_number ON invoices (tenant_id, symbol, number) WHERE number IS NOT NULL;
CREATE INDEX invoices_to_send ON invoices (next_send_at)
    WHERE status IN ('issued', 'sent') AND next_send_at IS NOT NULL;
CREATE INDEX invoices_issue_date ON invoices (tenant_id, issue_date) WHERE issue_date IS NOT NULL;

-- A line: per service point and service for a period's invoice; amount before VAT and VAT
-- at the line's rate ('KCT' not subject: no VAT). On an adjustment, amounts may be
-- negative. charge_ids: the charges it bills; stop_visit_id and proof: the recorded service
-- an ad-hoc line bills (time, place, vehicle).
CREATE TABLE invoice_lines (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invoice_id        bigint NOT NULL REFERENCES invoices (id),
    line_no           integer NOT NULL CHECK (line_no >= 1),
    service_point_id  bigint REFERENCES service_points (id),
    service           text NOT NULL,
    description       text NOT NULL CHECK (length(description) BETWEEN 1 AND 500),
    unit              text NOT NULL DEFAULT '' CHECK (length(unit) <= 50),
    quantity          numeric(14, 3) NOT NULL DEFAULT 1,
    unit_price_vnd    numeric(16, 2),
    amount_vnd        bigint NOT NULL,
    vat_rate          text NOT NULL CHECK (vat_rate IN ('KCT', '0', '5', '8', '10')),
    vat_vnd           bigint NOT NULL,
    period_start      date,
    period_end        date,
    charge_ids        bigint[] NOT NULL DEFAULT '{}',
    stop_visit_id     bigint REFERENCES stop_visits (id),
    proof             jsonb,
    adjusts_line_id   bigint REFERENCES invoice_lines (id),
    UNIQUE (invoice_id, line_no),
    CHECK (vat_rate NOT IN ('KCT', '0') OR vat_vnd = 0)
);
CREATE INDEX invoice_lines_point ON invoice_lines (service_point_id) WHERE service_point_id IS NOT NULL;
-- Deleting a draft's lines checks that no line adjusts them: without this, a scan per line.
CREATE INDEX invoice_lines_adjusts ON invoice_lines (adjusts_line_id)
    WHERE adjusts_line_id IS NOT NULL;

-- What an adjustment or a replacement refers to, as printed on it: the original's
-- template, symbol, number and date. An adjustment may cover several invoices of one buyer
-- and one month (list form 01/BK-ĐCTT).
CREATE TABLE invoice_references (
    invoice_id            bigint NOT NULL REFERENCES invoices (id),
    referenced_id         bigint NOT NULL REFERENCES invoices (id),
    relation              text NOT NULL CHECK (relation IN ('adjusts', 'replaces')),
    referenced_template   text NOT NULL,
    referenced_symbol     text NOT NULL,
    referenced_number     integer NOT NULL,
    referenced_issue_date date NOT NULL,
    PRIMARY KEY (invoice_id, referenced_id),
    CHECK (invoice_id <> referenced_id)
);
CREATE INDEX invoice_references_referenced ON invoice_references (referenced_id);
-- An invoice is replaced at most once (its replacement may itself be replaced).
CREATE UNIQUE INDEX invoice_replaced_once ON invoice_references (referenced_id)
    WHERE relation = 'replaces';

-- Form 04/SS-HĐĐT: the notice to the tax authority of an invoice with an error: cancelled
-- (before delivery), adjusted, replaced, or explained (after delivery, only the buyer's
-- name or address was wrong: no new invoice).
CREATE TABLE invoice_error_notices (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants (id),
    invoice_id      bigint NOT NULL REFERENCES invoices (id),
    action          text NOT NULL CHECK (action IN ('cancel', 'adjust', 'replace', 'explain')),
    reason          text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    correcting_id   bigint REFERENCES invoices (id),
    created_by      bigint REFERENCES users (id),
    created_at      timestamptz NOT NULL,
    sent_at         timestamptz
);
CREATE INDEX invoice_error_notices_invoice ON invoice_error_notices (invoice_id);
CREATE INDEX invoice_error_notices_correcting ON invoice_error_notices (correcting_id)
    WHERE correcting_id IS NOT NULL;

-- A business buyer's written agreement to an adjustment or replacement (Decree 70/2025),
-- kept with its SHA-256 before the correction is issued.
CREATE TABLE invoice_agreements (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     bigint NOT NULL REFERENCES tenants (id),
    invoice_id    bigint NOT NULL REFERENCES invoices (id),  -- the correcting invoice
    signed_on     date NOT NULL,
    signed_by     text NOT NULL CHECK (length(signed_by) BETWEEN 1 AND 200),
    filename      text NOT NULL CHECK (length(filename) BETWEEN 1 AND 255),
    content_type  text NOT NULL CHECK (length(content_type) BETWEEN 1 AND 100),
    size_bytes    integer NOT NULL CHECK (size_bytes BETWEEN 1 AND 20971520),
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content       bytea NOT NULL,
    uploaded_by   bigint REFERENCES users (id),
    uploaded_at   timestamptz NOT NULL,
    UNIQUE (invoice_id, sha256)
);

-- When a customer's terms change back into a period already invoiced, the charge run
-- leaves the issued invoice alone and proposes the difference here; the office accepts
-- (an adjustment invoice is drafted) or dismisses it.
CREATE TABLE adjustment_proposals (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id              bigint NOT NULL REFERENCES tenants (id),
    customer_id            bigint NOT NULL,
    invoice_id             bigint NOT NULL REFERENCES invoices (id),
    charge_id              bigint NOT NULL,
    service_point_id       bigint NOT NULL REFERENCES service_points (id),
    period_start           date NOT NULL,
    period_end             date NOT NULL,
    service                text NOT NULL,
    component              text NOT NULL,
    invoiced_amount_vnd    bigint NOT NULL,
    recomputed_amount_vnd  bigint NOT NULL,
    vat_rate               text NOT NULL CHECK (vat_rate IN ('KCT', '0', '5', '8', '10')),
    detail                 jsonb NOT NULL,
    status                 text NOT NULL DEFAULT 'proposed'
                           CHECK (status IN ('proposed', 'accepted', 'dismissed', 'superseded')),
    created_at             timestamptz NOT NULL,
    decided_by             bigint REFERENCES users (id),
    decided_at             timestamptz,
    adjustment_invoice_id  bigint REFERENCES invoices (id),
    CHECK (recomputed_amount_vnd <> invoiced_amount_vnd)
);
CREATE UNIQUE INDEX adjustment_proposals_open ON adjustment_proposals (charge_id)
    WHERE status = 'proposed';
CREATE INDEX adjustment_proposals_tenant ON adjustment_proposals (tenant_id, status, customer_id);
CREATE INDEX adjustment_proposals_invoice ON adjustment_proposals (invoice_id);
CREATE INDEX adjustment_proposals_adjustment ON adjustment_proposals (adjustment_invoice_id)
    WHERE adjustment_invoice_id IS NOT NULL;

-- Every exchange with the e-invoice provider, for the accountant and for disputes.
CREATE TABLE einvoice_attempts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invoice_id    bigint NOT NULL REFERENCES invoices (id),
    attempted_at  timestamptz NOT NULL,
    operation     text NOT NULL CHECK (operation IN ('submit', 'status')),
    outcome       text NOT NULL CHECK (outcome IN ('accepted', 'pending', 'coded', 'rejected',
                                                   'failed', 'duplicate')),
    detail        text NOT NULL DEFAULT ''
);
CREATE INDEX einvoice_attempts_invoice ON einvoice_attempts (invoice_id, id);

-- Printing: a batch (an area's or a collector's invoices, or a list) rendered to one file;
-- every invoice printed is recorded, reprints counted.
CREATE TABLE print_batches (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      bigint NOT NULL REFERENCES tenants (id),
    kind           text NOT NULL CHECK (kind IN ('invoices', 'collector_book')),
    scope          jsonb NOT NULL,  -- {"area_id"|"collector_staff_id"|"invoice_ids", "period_start"...}
    invoice_count  integer NOT NULL CHECK (invoice_count >= 0),
    pages          integer NOT NULL CHECK (pages >= 0),
    size_bytes     bigint NOT NULL CHECK (size_bytes >= 0),
    sha256         text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    created_by     bigint REFERENCES users (id),
    created_at     timestamptz NOT NULL
);
CREATE TABLE invoice_prints (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invoice_id  bigint NOT NULL REFERENCES invoices (id),
    batch_id    bigint REFERENCES print_batches (id),
    print_no    integer NOT NULL CHECK (print_no >= 1),  -- 1: the first print; more: reprints
    printed_by  bigint REFERENCES users (id),
    printed_at  timestamptz NOT NULL,
    UNIQUE (invoice_id, print_no)
);
