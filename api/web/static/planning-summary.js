// A plan read back: its figures, a line per route in the colour the route is drawn in on
// the map, and the stops left unserved and why.

import { km, number, whenText } from "./format.js";
import { t, tOr } from "./i18n.js";
import { el } from "./ui.js";

// Told apart by the vehicle's code beside each swatch as well, not by colour alone.
const ROUTE_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#1f78b4", "#666"];

/** The colour of a plan's ``n``th route: its table row and its line on the map match. */
export function routeColour(n) {
  return ROUTE_COLOURS[n % ROUTE_COLOURS.length];
}

/** "07:05" for 25500 s after local midnight; "00:30+1" past the day's end. */
function secondsClock(seconds) {
  const total = Math.max(0, Math.round(seconds / 60));
  const days = Math.floor(total / 1440);
  const minutes = total % 1440;
  const two = (n) => String(n).padStart(2, "0");
  const text = `${two(Math.floor(minutes / 60))}:${two(minutes % 60)}`;
  return days ? `${text}+${days}` : text;
}

/** A route's colour beside its vehicle (set through the DOM: the page's CSP forbids inline
 * style attributes). */
function swatch(colour) {
  const node = el("span", { class: "route-swatch", "aria-hidden": "true" });
  node.style.backgroundColor = colour;
  return node;
}

/** "14 phút", "2 giờ 5 phút": how long a route or the day's work takes. */
function span(seconds) {
  const minutes = Math.round((seconds || 0) / 60);
  if (minutes < 60) return t("plan.minutes_n", { m: minutes });
  return t("plan.hours_minutes", { h: Math.floor(minutes / 60), m: minutes % 60 });
}

/**
 * The nodes showing ``plan`` (null: the date has none yet).
 * @param {(vehicleCode: string) => void} onRoute a route's row was clicked
 */
export function planSummary(plan, onRoute) {
  if (!plan) return [el("p", { class: "note" }, t("plan.none"))];
  const s = plan.summary || {};
  const header = [
    `#${plan.id}`,
    tOr(`plan.reason_${plan.reason}`, plan.reason),
    whenText(plan.created_at),
    plan.created_by || "–",
  ].join(" · ");
  const figures = [
    ["plan.vehicles", `${s.vehicles_used ?? 0} / ${s.vehicles_available ?? 0}`],
    ["plan.served", `${s.served ?? 0} / ${s.stops ?? 0}`],
    ["plan.distance", km(s.distance_m)],
    ["plan.duration", span(s.duration_s)],
    ["plan.longest_shortest", `${span(s.longest_s)} / ${span(s.shortest_s)}`],
    ["plan.matrix", tOr(`plan.matrix_${plan.matrix}`, plan.matrix)],
    ["plan.engine", `${plan.engine} · ${t("plan.seconds_n", { n: number(plan.runtime_s, 1) })}`],
  ];
  if (plan.note) figures.push(["plan.note", plan.note]);
  return [
    el("p", { class: "plan-header", dataset: { testid: "plan-header" } }, el("strong", {}, header)),
    el(
      "dl",
      { class: "figures" },
      figures.flatMap(([key, value]) => [
        el("dt", {}, t(key)),
        el("dd", { dataset: { figure: key.slice("plan.".length) } }, value),
      ]),
    ),
    routeTable(s.routes || [], onRoute),
    unservedList(plan.unserved || []),
  ];
}

function routeTable(routes, onRoute) {
  if (routes.length === 0) return el("p", { class: "note" }, t("plan.no_routes"));
  const heads = ["vehicle", "stops", "trips", "km", "hours", "load"].map((name) =>
    el("th", { scope: "col" }, t(`plan.col_${name}`)),
  );
  const rows = routes.map((route, n) =>
    el(
      "tr",
      {
        class: "clickable",
        dataset: { testid: "plan-route-row", vehicle: route.vehicle },
        title: t("plan.show_route"),
        onclick: () => onRoute(route.vehicle),
      },
      el("th", { scope: "row" }, swatch(routeColour(n)), route.vehicle),
      el("td", {}, String(route.stops)),
      el("td", {}, String(route.trips)),
      el("td", {}, number(route.distance_m / 1000, 1)),
      el("td", {}, `${secondsClock(route.start_s)}–${secondsClock(route.end_s)}`),
      el("td", {}, number(route.load?.[0] ?? 0)),
    ),
  );
  return el(
    "div",
    { class: "table-scroll" },
    el(
      "table",
      { class: "compact plan-routes", dataset: { testid: "plan-routes" } },
      el("thead", {}, el("tr", {}, ...heads)),
      el("tbody", {}, ...rows),
    ),
  );
}

function unservedList(unserved) {
  if (unserved.length === 0) return el("p", { class: "note" }, t("plan.all_served"));
  return el(
    "div",
    { class: "plan-unserved" },
    el("h3", {}, t("plan.unserved_n", { n: unserved.length })),
    el(
      "ul",
      { dataset: { testid: "plan-unserved" } },
      unserved.map((stop) =>
        el(
          "li",
          { dataset: { testid: "unserved-stop", reason: stop.reason, point: stop.service_point_id } },
          el("strong", {}, stop.code),
          ` ${stop.name || ""} · `,
          el("span", { class: "unserved-reason" }, tOr(`plan.unserved_${stop.reason}`, stop.reason)),
          stop.detail ? el("small", { class: "note" }, stop.detail) : null,
        ),
      ),
    ),
  );
}
