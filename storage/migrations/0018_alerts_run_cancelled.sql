-- An alert of a route run that is cancelled (a re-plan, a simulation started again) resolves
-- with the run: the engine stops tracking the run, so nothing else would ever close it.
-- (alerts_resolution_check is 0006's unnamed rule on the column.)
ALTER TABLE alerts
    DROP CONSTRAINT alerts_resolution_check,
    ADD CONSTRAINT alerts_resolution_check
        CHECK (resolution IN ('cleared', 'visited_late', 'withdrawn', 'by_person', 'one_shot',
                              'run_cancelled'));

-- Those already stuck open on a run cancelled before this rule existed close now.
UPDATE alerts SET state = 'resolved', resolution = 'run_cancelled',
                  resolved_at = GREATEST(now(), last_evidence_at),
                  resolve_note = 'Tuyến đã bị huỷ'
 WHERE state <> 'resolved'
   AND route_run_id IN (SELECT id FROM route_runs WHERE status = 'cancelled');
