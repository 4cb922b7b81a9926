-- Revenue (issue 8, part 7): every invoice line that counts as revenue, kept ahead with what
-- the revenue report groups by, so that a month of a million lines is summed from one narrow
-- table. Why a table and not indexes: joining a million lines to their invoices and service
-- points took 2.3-3.4 s even with covering indexes; summing this table takes 0.45-0.7 s
-- (p50, one month of 970,000 lines, 2 busy vCPUs).
-- Owned by billing/revenue.py; written only by the triggers below.
--
-- A line counts while its invoice is numbered and stands: issued, sent, coded, delivered or
-- adjusted (an adjustment's own lines count too, negative ones as well). Drafts do not count
-- yet; cancelled and replaced invoices no longer do (the replacement counts instead).
-- A numbered invoice's lines are never edited nor deleted (a correction is a new invoice;
-- billing deletes drafts' lines only), so only their inserts are followed. No foreign key to
-- invoice_lines: deleting a million drafts' lines would check each here (+6 µs a line).
-- Area, collector and class are the service point's when the invoice was issued: a closed
-- month's figures stay as they were reported when a point later moves to another area or
-- collector.
-- Columns are ordered fixed-width first and text last: a scan reads them faster.
CREATE TABLE revenue_lines (
    line_id             bigint PRIMARY KEY,
    tenant_id           bigint NOT NULL REFERENCES tenants (id),
    invoice_id          bigint NOT NULL,
    issue_date          date NOT NULL,
    service_start       date NOT NULL,  -- the line's period start, else its invoice's, else
                                        -- the issue date
    amount_vnd          bigint NOT NULL,
    vat_vnd             bigint NOT NULL,
    -- The invoice has no other line: the report adds such invoices up, and counts distinct
    -- invoices among the other lines only. A line added later turns its siblings' false.
    sole_line           boolean NOT NULL,
    area_id             bigint,
    collector_staff_id  bigint,
    vat_rate            text NOT NULL,
    service             text NOT NULL,
    customer_class      text  -- NULL: a line without a service point
);
CREATE INDEX revenue_lines_issued ON revenue_lines (tenant_id, issue_date);
CREATE INDEX revenue_lines_served ON revenue_lines (tenant_id, service_start);
-- Distinct invoices are counted among the lines of invoices with several lines only: these
-- read them without the rest (index-only; 0.3 s -> 0.14 s for 194,000 of 970,000 lines).
CREATE INDEX revenue_lines_shared_issued ON revenue_lines (tenant_id, issue_date)
    INCLUDE (invoice_id, service_start, area_id, collector_staff_id, service, customer_class)
    WHERE NOT sole_line;
CREATE INDEX revenue_lines_shared_served ON revenue_lines (tenant_id, service_start)
    INCLUDE (invoice_id, issue_date, area_id, collector_staff_id, service, customer_class)
    WHERE NOT sole_line;

CREATE FUNCTION revenue_counts(status text) RETURNS boolean LANGUAGE sql IMMUTABLE
    RETURN status IN ('issued', 'sent', 'coded', 'delivered', 'adjusted');

-- The lines of the invoices that count, as revenue_lines keeps them: what is there when this
-- migration runs, and lines written into an invoice that counts already.
CREATE VIEW revenue_line_facts AS
SELECT l.id AS line_id, i.tenant_id, l.invoice_id, i.issue_date,
       coalesce(l.period_start, i.period_start, i.issue_date) AS service_start,
       l.amount_vnd, l.vat_vnd,
       NOT EXISTS (SELECT 1 FROM invoice_lines o WHERE o.invoice_id = l.invoice_id AND o.id <> l.id)
           AS sole_line,
       p.area_id, p.collector_staff_id, l.vat_rate, l.service, p.customer_class
  FROM invoice_lines l
  JOIN invoices i ON i.id = l.invoice_id
  LEFT JOIN service_points p ON p.id = l.service_point_id
 WHERE revenue_counts(i.status);

INSERT INTO revenue_lines SELECT * FROM revenue_line_facts;

-- Lines written into an invoice that counts already: billing writes lines into drafts only,
-- so this finds none (one look-up per new line's invoice); tests and imports may write a
-- numbered invoice whole, a line at a time, so its lines written before are no longer alone.
CREATE FUNCTION revenue_lines_added() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    counted bigint[];
BEGIN
    SELECT array_agg(i.id) INTO counted FROM invoices i
     WHERE i.id IN (SELECT invoice_id FROM added_lines) AND revenue_counts(i.status);
    IF counted IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO revenue_lines
    SELECT f.* FROM revenue_line_facts f
     WHERE f.invoice_id = ANY (counted) AND f.line_id IN (SELECT id FROM added_lines);
    UPDATE revenue_lines r SET sole_line = false
      FROM invoice_lines l
     WHERE l.invoice_id = ANY (counted) AND r.line_id = l.id AND r.sole_line
       AND EXISTS (SELECT 1 FROM invoice_lines o WHERE o.invoice_id = l.invoice_id AND o.id <> l.id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER invoice_lines_revenue AFTER INSERT ON invoice_lines
    REFERENCING NEW TABLE AS added_lines
    FOR EACH STATEMENT EXECUTE FUNCTION revenue_lines_added();

-- An invoice that starts counting (a draft issued) brings its lines in; one that stops
-- (cancelled, replaced) takes them out; a counted one whose dates change moves them.
-- Issuing is the busy path: the invoices come from the statement's rows and a line's
-- siblings are counted among the lines read, not looked up again as revenue_line_facts
-- does (10,000 invoices issued: +0.2 s instead of +0.4 s).
CREATE FUNCTION revenue_lines_invoices_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM revenue_lines r
     USING old_invoices o, new_invoices n, invoice_lines l
     WHERE n.id = o.id AND revenue_counts(o.status) AND NOT revenue_counts(n.status)
       AND l.invoice_id = n.id AND r.line_id = l.id;
    INSERT INTO revenue_lines
    SELECT l.id, n.tenant_id, l.invoice_id, n.issue_date,
           coalesce(l.period_start, n.period_start, n.issue_date), l.amount_vnd, l.vat_vnd,
           count(*) OVER (PARTITION BY l.invoice_id) = 1,
           p.area_id, p.collector_staff_id, l.vat_rate, l.service, p.customer_class
      FROM old_invoices o
      JOIN new_invoices n ON n.id = o.id
      JOIN invoice_lines l ON l.invoice_id = n.id
      LEFT JOIN service_points p ON p.id = l.service_point_id
     WHERE revenue_counts(n.status) AND NOT revenue_counts(o.status);
    UPDATE revenue_lines r
       SET issue_date = n.issue_date,
           service_start = coalesce(l.period_start, n.period_start, n.issue_date)
      FROM old_invoices o, new_invoices n, invoice_lines l
     WHERE n.id = o.id AND revenue_counts(o.status) AND revenue_counts(n.status)
       AND (o.issue_date, o.period_start) IS DISTINCT FROM (n.issue_date, n.period_start)
       AND l.invoice_id = n.id AND r.line_id = l.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER invoices_revenue AFTER UPDATE ON invoices
    REFERENCING OLD TABLE AS old_invoices NEW TABLE AS new_invoices
    FOR EACH STATEMENT EXECUTE FUNCTION revenue_lines_invoices_changed();

-- Drafts are reported apart (not revenue yet), summed from the invoices: a company's
-- drafts are a working set, not history.
CREATE INDEX invoices_drafts ON invoices (tenant_id) INCLUDE (period_start, created_at, total_vnd)
    WHERE status = 'draft';
