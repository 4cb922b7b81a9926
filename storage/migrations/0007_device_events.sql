-- Device events (ARCHITECTURE §3, topic sanitrack/{tenant}/dev/{device}/evt): ignition,
-- bin lifts, panic buttons, incident reports and collectors' stop confirmations, as the
-- devices reported them. Written by ingest; a resent message is stored once (the unique key).
CREATE TABLE device_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    bigint NOT NULL REFERENCES tenants (id),
    device_id    bigint NOT NULL REFERENCES devices (id),
    time         timestamptz NOT NULL,          -- when it happened, by the device's clock
    received_at  timestamptz NOT NULL,
    kind         text NOT NULL
                 CHECK (kind IN ('ignition', 'bin_lift', 'panic', 'incident', 'stop_confirm')),
    lat          double precision CHECK (lat BETWEEN -90 AND 90),
    lon          double precision CHECK (lon BETWEEN -180 AND 180),
    value        boolean,                       -- ignition: on or off
    -- route_run_id and stop_seq (stop_confirm), note (incident reports)
    details      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
    UNIQUE (device_id, time, kind),
    CHECK ((lat IS NULL) = (lon IS NULL)),
    CHECK (kind <> 'ignition' OR value IS NOT NULL),
    CHECK (kind <> 'stop_confirm' OR (details ? 'route_run_id' AND details ? 'stop_seq'))
);
CREATE INDEX device_events_tenant_time ON device_events (tenant_id, time DESC);
