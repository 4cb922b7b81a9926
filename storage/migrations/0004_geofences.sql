-- Named areas the rules engine watches: depots, transfer stations, landfills, restricted zones.
CREATE TABLE geofences (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind        text NOT NULL CHECK (kind IN ('depot', 'transfer_station', 'landfill',
                                              'restricted', 'other')),
    -- GeoJSON Polygon, [lon, lat] positions, one closed outer ring
    area        jsonb NOT NULL CHECK (area ->> 'type' = 'Polygon'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
