-- A stop visit inferred from time (rules/stop_timing.py): with sparse fixes the truck took
-- longer over the stretch around a stop than driving it takes, by at least its service. It
-- is probable, like a slow pass; a dwell, a bin lift or a confirmation is a visit.
-- (stop_visits_check1 is 0006's unnamed "probable only from a slow pass" rule;
-- stop_visits_check is departure_at >= arrival_at, kept.)
ALTER TABLE stop_visits
    DROP CONSTRAINT stop_visits_evidence_check,
    DROP CONSTRAINT stop_visits_check1,
    ADD CONSTRAINT stop_visits_evidence_check
        CHECK (evidence IN ('dwell', 'bin_lift', 'staff_confirmation', 'slow_pass',
                            'inferred_from_time')),
    ADD CONSTRAINT stop_visits_probable_evidence
        CHECK ((status = 'probable') = (evidence IN ('slow_pass', 'inferred_from_time')));
