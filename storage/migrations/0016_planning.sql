-- Route planning (issue 6): what the planner reads (collection days and opening hours of
-- service points, trucks' shifts and volumes, street speeds, closed roads) and what it
-- writes (plans, the stops it could not serve, the routes sent to the trucks). Owned by
-- planning/, except the columns on service_points (customers/) and vehicles (fleet/).

ALTER TABLE street_map
    ADD COLUMN speed_kmh real CHECK (speed_kmh > 0 AND speed_kmh <= 130);

ALTER TABLE service_points
    -- ISO weekdays (1 = Monday) the waste is collected; Vietnamese cities collect daily
    ADD COLUMN collection_days smallint[] NOT NULL DEFAULT '{1,2,3,4,5,6,7}'
        CHECK (collection_days <@ '{1,2,3,4,5,6,7}'::smallint[] AND cardinality(collection_days) >= 1),
    -- when a shop or office has its waste out (local time); both or neither
    ADD COLUMN window_open time,
    ADD COLUMN window_close time,
    ADD COLUMN service_s integer CHECK (service_s BETWEEN 0 AND 7200),
    ADD CONSTRAINT service_points_window
        CHECK ((window_open IS NULL) = (window_close IS NULL) AND
               (window_close IS NULL OR window_close > window_open));

ALTER TABLE vehicles
    ADD COLUMN capacity_m3 numeric(6, 2) CHECK (capacity_m3 > 0),
    ADD COLUMN shift_start time NOT NULL DEFAULT '05:00',
    ADD COLUMN shift_end time NOT NULL DEFAULT '13:00',
    ADD COLUMN max_route_s integer CHECK (max_route_s > 0),
    ADD COLUMN break_start time,  -- earliest start of the crew's break
    ADD COLUMN break_end time,  -- latest start of the break
    ADD COLUMN break_s integer CHECK (break_s > 0),
    ADD COLUMN depot_geofence_id bigint REFERENCES geofences (id),
    ADD COLUMN driver_staff_id bigint REFERENCES staff (id),
    -- out of service (repairs): the planner leaves it out
    ADD COLUMN in_service boolean NOT NULL DEFAULT true,
    ADD CONSTRAINT vehicles_shift CHECK (shift_end > shift_start),
    ADD CONSTRAINT vehicles_break
        CHECK ((break_start IS NULL) = (break_s IS NULL) AND (break_start IS NULL) = (break_end IS NULL)
               AND (break_end IS NULL OR break_end >= break_start));

-- One planning of one depot's day, or a re-planning of part of it.
CREATE TABLE plans (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        bigint NOT NULL REFERENCES tenants (id),
    local_date       date NOT NULL,
    depot_geofence_id bigint NOT NULL REFERENCES geofences (id),
    reason           text NOT NULL CHECK (reason IN ('plan', 'road_blocked', 'breakdown',
                                                     'new_request')),
    replans_id       bigint REFERENCES plans (id),
    engine           text NOT NULL,
    time_limit_s     real NOT NULL CHECK (time_limit_s > 0),
    runtime_s        real NOT NULL CHECK (runtime_s >= 0),
    matrix           text NOT NULL CHECK (matrix IN ('streets', 'straight_line')),
    -- vehicles used, stops, distance, duration, unserved, balance: what `sanitrack plan` prints
    summary          jsonb NOT NULL,
    note             text NOT NULL DEFAULT '' CHECK (length(note) <= 500),
    created_by       text NOT NULL DEFAULT '' CHECK (length(created_by) <= 200),
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX plans_date ON plans (tenant_id, local_date, id);

-- Stops a plan could not serve, each with its reason: reported, never silently dropped.
CREATE TABLE plan_unserved (
    plan_id           bigint NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
    service_point_id  bigint NOT NULL REFERENCES service_points (id),
    code              text NOT NULL DEFAULT '',  -- the point's code and name when planned
    name              text NOT NULL DEFAULT '',
    reason            text NOT NULL CHECK (reason IN ('demand_above_capacity',
                          'window_unreachable', 'shift_too_short', 'no_vehicle_left',
                          'unreachable_by_road')),
    detail            text NOT NULL DEFAULT '',
    PRIMARY KEY (plan_id, service_point_id)
);

ALTER TABLE route_runs
    ADD COLUMN plan_id bigint REFERENCES plans (id),
    ADD COLUMN replaces_run_id bigint REFERENCES route_runs (id);
CREATE INDEX route_runs_plan ON route_runs (plan_id);

-- A road closed by an incident: its streets are not driven by plans made while it holds.
CREATE TABLE road_blocks (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants (id),
    lat             double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon             double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    radius_m        real NOT NULL CHECK (radius_m > 0 AND radius_m <= 2000),
    street_map_ids  bigint[] NOT NULL,
    note            text NOT NULL DEFAULT '' CHECK (length(note) <= 500),
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz CHECK (ends_at > starts_at),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX road_blocks_tenant ON road_blocks (tenant_id, starts_at);

-- Routes sent to the trucks' `cmd` topic: kept so a failed send is seen and sent again.
CREATE TABLE route_commands (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     bigint NOT NULL REFERENCES tenants (id),
    route_run_id  bigint NOT NULL REFERENCES route_runs (id) ON DELETE CASCADE,
    device_id     bigint NOT NULL REFERENCES devices (id),
    topic         text NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz,
    error         text NOT NULL DEFAULT ''
);
CREATE INDEX route_commands_unsent ON route_commands (tenant_id) WHERE sent_at IS NULL;
