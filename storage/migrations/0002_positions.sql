-- positions: a TimescaleDB hypertable when the extension is installable,
-- a native range-partitioned table (daily partitions) otherwise.
-- Chunk interval, compression and retention (TimescaleDB) or the partitions
-- themselves (native) are kept up to date by storage.positions from settings.
-- No foreign key to devices: it would cost a lookup per row on the hot path;
-- ingest only writes fixes of devices it has resolved.
DO $$
DECLARE
    columns text := '
        device_id    bigint NOT NULL,
        time         timestamptz NOT NULL,
        tenant_id    bigint NOT NULL,
        received_at  timestamptz NOT NULL,
        lat          double precision NOT NULL,
        lon          double precision NOT NULL,
        speed_kmh    real,
        heading_deg  real,
        accuracy_m   real,
        alt_m        real,
        sats         smallint,
        seq          bigint,
        ignition     boolean,
        battery_pct  smallint,
        odometer_m   bigint,
        source       text NOT NULL DEFAULT ''native'',
        PRIMARY KEY (device_id, time)';
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        EXECUTE format('CREATE TABLE positions (%s)', columns);
        PERFORM create_hypertable('positions', 'time', chunk_time_interval => INTERVAL '1 day');
    ELSE
        EXECUTE format('CREATE TABLE positions (%s) PARTITION BY RANGE (time)', columns);
    END IF;
END
$$;
CREATE INDEX positions_tenant_time ON positions (tenant_id, time DESC);
