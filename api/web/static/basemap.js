// What lies under the vehicles: a tile layer when the company configured a tile server,
// otherwise (offline, the default) the street network drawn from /api/v1/map/streets on a
// canvas, and the geofences (depots, transfer stations, landfills, restricted zones).

import { get } from "./api.js";
import { t } from "./i18n.js";
import { el } from "./ui.js";

// Width in pixels at zoom 16 and colour per street kind; widths scale with the zoom.
const STREET_STYLE = {
  arterial: { width: 7, color: "#e8a33d", casing: "#b07316" },
  primary: { width: 6, color: "#f2c766", casing: "#b8902d" },
  secondary: { width: 5, color: "#fbe3a0", casing: "#c6ad66" },
  residential: { width: 4, color: "#ffffff", casing: "#b9b4aa" },
  alley: { width: 2.5, color: "#ffffff", casing: "#cfcac0" },
  other: { width: 2, color: "#f4f1ea", casing: "#cfcac0" },
};
const STREET_NAMES_FROM_ZOOM = 16;

const GEOFENCE_STYLE = {
  depot: { color: "#1f5fa8", fillColor: "#4a8fd9", dashArray: null },
  transfer_station: { color: "#6a3d9a", fillColor: "#a585c7", dashArray: null },
  landfill: { color: "#7a5230", fillColor: "#b48a5e", dashArray: null },
  restricted: { color: "#b2182b", fillColor: "#e66a6a", dashArray: "8 6" },
};

export class Basemap {
  constructor(map) {
    this.map = map;
    this.renderer = L.canvas({ padding: 0.3, tolerance: 4 });
    this.streets = null;
    this.casings = null;
    this.geofences = null;
    this.tiles = null;
    map.createPane("geofences").style.zIndex = 350;
    map.on("zoomend", () => this.restyle());
  }

  async load(config) {
    if (config.tile_url) {
      this.tiles = L.tileLayer(config.tile_url, {
        attribution: config.tile_attribution || "",
        maxZoom: 19,
        crossOrigin: true,
      }).addTo(this.map);
    } else {
      const streets = await get("/api/v1/map/streets");
      this.drawStreets(streets);
    }
    const geofences = await get("/api/v1/geofences");
    this.drawGeofences(geofences);
  }

  drawStreets(collection) {
    const options = (casing) => ({
      renderer: this.renderer,
      interactive: !casing,
      style: (feature) => this.streetStyle(feature.properties.kind, casing),
    });
    // A darker line under a lighter one: streets read as streets, not as strokes.
    this.casings = L.geoJSON(collection, options(true)).addTo(this.map);
    this.streets = L.geoJSON(collection, {
      ...options(false),
      onEachFeature: (feature, layer) => {
        const name = feature.properties.name;
        if (name) {
          layer.bindTooltip(
            () => el("span", {}, name, feature.properties.one_way ? ` (${t("street.one_way")})` : ""),
            { sticky: true, className: "street-tooltip", direction: "top", opacity: 0.95 },
          );
        }
      },
    }).addTo(this.map);
    this.restyle();
  }

  streetStyle(kind, casing) {
    const style = STREET_STYLE[kind] || STREET_STYLE.other;
    const scale = 2 ** ((this.map.getZoom() - 16) / 1.5);
    const width = Math.max(0.8, style.width * scale);
    return {
      color: casing ? style.casing : style.color,
      weight: casing ? width + Math.max(1, 1.5 * scale) : width,
      opacity: 1,
      lineCap: "round",
      lineJoin: "round",
    };
  }

  restyle() {
    if (this.streets) {
      this.casings.setStyle((f) => this.streetStyle(f.properties.kind, true));
      this.streets.setStyle((f) => this.streetStyle(f.properties.kind, false));
    }
    // Street names only where they can be read; below that zoom they hide (in CSS).
    this.map
      .getContainer()
      .classList.toggle("street-names-hidden", this.map.getZoom() < STREET_NAMES_FROM_ZOOM);
  }

  drawGeofences(collection) {
    this.geofences = L.geoJSON(collection, {
      pane: "geofences",
      style: (feature) => {
        const style = GEOFENCE_STYLE[feature.properties.kind] || GEOFENCE_STYLE.restricted;
        return { ...style, weight: 2, opacity: 0.9, fillOpacity: 0.15 };
      },
      onEachFeature: (feature, layer) => {
        const { name, kind } = feature.properties;
        layer.bindTooltip(() => el("span", {}, el("strong", {}, name || ""), " · ", t(`geofence.${kind}`)), {
          sticky: true,
        });
      },
    }).addTo(this.map);
  }
}
