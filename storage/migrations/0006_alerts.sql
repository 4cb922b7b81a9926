-- Alerts (ARCHITECTURE §7) and stop visits, written only by alerts/service.py.
--
-- The rules engine replays a stretch of fixes after a restart or a late fix, so everything
-- it writes here is keyed: applying the same signal or visit again changes nothing.
CREATE TABLE alerts (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         bigint NOT NULL REFERENCES tenants (id),
    -- The rules' name for the alert (kind, device, run, stop, the fix time it opened at): the
    -- same evidence always gives the same key, so UNIQUE turns a replayed opening into a no-op.
    key               text NOT NULL CHECK (length(key) BETWEEN 1 AND 500),
    kind              text NOT NULL CHECK (kind IN ('wrong_route', 'missed_stop', 'offline',
                                                    'speeding', 'idle', 'geofence_enter',
                                                    'geofence_exit', 'gps_jump')),
    severity          text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    device_id         bigint REFERENCES devices (id),
    vehicle_id        bigint REFERENCES vehicles (id),
    -- A run or stop with alerts is evidence: deleting it must fail rather than orphan them.
    route_run_id      bigint REFERENCES route_runs (id),
    stop_id           bigint REFERENCES route_stops (id),
    stop_seq          integer CHECK (stop_seq >= 1),
    -- Fix times, not insert times: a replay must not make an old alert look new.
    opened_at         timestamptz NOT NULL,
    last_evidence_at  timestamptz NOT NULL CHECK (last_evidence_at >= opened_at),
    state             text NOT NULL DEFAULT 'open'
                      CHECK (state IN ('open', 'acknowledged', 'resolved')),
    message           text NOT NULL DEFAULT '',
    evidence          jsonb NOT NULL DEFAULT '{}',
    resolved_at       timestamptz,
    resolution        text CHECK (resolution IN ('cleared', 'visited_late', 'withdrawn',
                                                 'by_person', 'one_shot')),
    resolved_by       bigint REFERENCES staff (id),
    -- Why it resolved: the person's note, or the rules' message ("đã thu gom điểm 12 (muộn)").
    resolve_note      text CHECK (length(resolve_note) <= 2000),
    acknowledged_at   timestamptz,
    acknowledged_by   bigint REFERENCES staff (id),
    acknowledge_note  text CHECK (length(acknowledge_note) <= 2000),
    assigned_to       bigint REFERENCES staff (id),
    assigned_at       timestamptz,
    assigned_by       bigint REFERENCES staff (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, key),
    CHECK ((state = 'resolved') = (resolved_at IS NOT NULL)),
    CHECK ((state = 'resolved') = (resolution IS NOT NULL)),
    CHECK ((resolution = 'by_person') = (resolved_by IS NOT NULL)),
    CHECK ((acknowledged_by IS NULL) = (acknowledged_at IS NULL)),
    CHECK ((assigned_to IS NULL) = (assigned_at IS NULL))
);
-- The dispatchers' board and the engine's recovery read only what is unresolved: a small
-- partial index however long the history grows.
CREATE INDEX alerts_unresolved ON alerts (tenant_id, opened_at) WHERE state <> 'resolved';
CREATE INDEX alerts_opened ON alerts (tenant_id, opened_at);
CREATE INDEX alerts_route_run ON alerts (route_run_id);

-- A route stop served (or probably served): the proof of service billing relies on. Keyed by
-- (run, stop, arrival) so that recording the same stay again, with a later departure or
-- stronger evidence, updates one row instead of adding another.
CREATE TABLE stop_visits (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         bigint NOT NULL REFERENCES tenants (id),
    route_run_id      bigint NOT NULL REFERENCES route_runs (id) ON DELETE CASCADE,
    stop_seq          integer NOT NULL CHECK (stop_seq >= 1),
    stop_id           bigint REFERENCES route_stops (id),
    service_point_id  bigint REFERENCES service_points (id),
    vehicle_id        bigint REFERENCES vehicles (id),
    device_id         bigint NOT NULL REFERENCES devices (id),
    status            text NOT NULL CHECK (status IN ('visited', 'probable')),
    evidence          text NOT NULL CHECK (evidence IN ('dwell', 'bin_lift',
                                                        'staff_confirmation', 'slow_pass')),
    arrival_at        timestamptz NOT NULL,
    departure_at      timestamptz CHECK (departure_at >= arrival_at),  -- NULL: still there
    dwell_s           real NOT NULL CHECK (dwell_s >= 0),
    closest_m         real NOT NULL CHECK (closest_m >= 0),
    lat               double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon               double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    late              boolean NOT NULL,
    details           jsonb NOT NULL DEFAULT '{}',
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (route_run_id, stop_seq, arrival_at),
    -- A slow pass is only probable; a dwell, a bin lift or a confirmation is a visit.
    CHECK ((status = 'probable') = (evidence = 'slow_pass'))
);
CREATE INDEX stop_visits_arrival ON stop_visits (tenant_id, arrival_at);
CREATE INDEX stop_visits_service_point ON stop_visits (service_point_id, arrival_at);
-- The engine's recovery reads every tenant's visits since a time.
CREATE INDEX stop_visits_arrival_all ON stop_visits (arrival_at);
