-- The street network of a tenant's city: the live map's offline basemap, and what the
-- planner routes on (the simulator's city now; an OpenStreetMap extract in production).

CREATE TABLE street_map (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id bigint NOT NULL REFERENCES tenants (id),
    name      text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    kind      text NOT NULL CHECK (kind IN ('arterial', 'primary', 'secondary', 'residential',
                                            'alley', 'other')),
    one_way   boolean NOT NULL DEFAULT false,
    -- GeoJSON LineString, [lon, lat] positions
    line      jsonb NOT NULL CHECK (line ->> 'type' = 'LineString'),
    source    text NOT NULL CHECK (source IN ('simulator', 'osm', 'import'))
);
CREATE INDEX street_map_tenant ON street_map (tenant_id);
