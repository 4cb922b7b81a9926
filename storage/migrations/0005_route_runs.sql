-- Planned routes (ARCHITECTURE §8): one vehicle, one local date, ordered stops, the expected
-- path and its corridor. Written by the planner (or the simulator until it lands), tracked by
-- the rules engine, drawn by the live map.
CREATE TABLE route_runs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      bigint NOT NULL REFERENCES tenants (id),
    vehicle_id     bigint NOT NULL REFERENCES vehicles (id),
    local_date     date NOT NULL,
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    planned_start  timestamptz NOT NULL,
    planned_end    timestamptz NOT NULL CHECK (planned_end >= planned_start),
    corridor_m     real NOT NULL CHECK (corridor_m > 0 AND corridor_m <= 1000),
    -- GeoJSON LineString, [lon, lat] positions: road geometry when known
    expected_path  jsonb NOT NULL CHECK (expected_path ->> 'type' = 'LineString'),
    path_length_m  double precision NOT NULL CHECK (path_length_m >= 0),
    status         text NOT NULL DEFAULT 'planned'
                   CHECK (status IN ('planned', 'active', 'completed', 'cancelled')),
    source         text NOT NULL CHECK (source IN ('planner', 'simulator', 'manual')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, vehicle_id, local_date, name)
);
CREATE INDEX route_runs_date ON route_runs (tenant_id, local_date);

CREATE TABLE route_stops (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         bigint NOT NULL REFERENCES tenants (id),
    route_run_id      bigint NOT NULL REFERENCES route_runs (id) ON DELETE CASCADE,
    seq               integer NOT NULL CHECK (seq >= 1),
    kind              text NOT NULL CHECK (kind IN ('collect', 'unload')),
    service_point_id  bigint REFERENCES service_points (id),
    geofence_id       bigint REFERENCES geofences (id),
    lat               double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon               double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    -- distance along expected_path where the vehicle stops: the rules engine's progress scale
    path_offset_m     double precision NOT NULL CHECK (path_offset_m >= 0),
    planned_arrival   timestamptz NOT NULL,
    window_start      timestamptz,
    window_end        timestamptz,
    demand_kg         real NOT NULL DEFAULT 0 CHECK (demand_kg >= 0),
    service_s         integer NOT NULL DEFAULT 0 CHECK (service_s >= 0),
    dwell_radius_m    real NOT NULL CHECK (dwell_radius_m > 0 AND dwell_radius_m <= 500),
    UNIQUE (route_run_id, seq),
    CHECK (window_end IS NULL OR window_start IS NULL OR window_end >= window_start),
    CHECK (kind <> 'collect' OR service_point_id IS NOT NULL)
);

-- The people on a run: its driver and collectors get its alerts on their phones.
CREATE TABLE route_run_crew (
    route_run_id  bigint NOT NULL REFERENCES route_runs (id) ON DELETE CASCADE,
    staff_id      bigint NOT NULL REFERENCES staff (id),
    role          text NOT NULL CHECK (role IN ('driver', 'collector')),
    PRIMARY KEY (route_run_id, staff_id)
);
