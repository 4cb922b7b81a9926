// Times, dates, durations and numbers as the dispatcher reads them: local time of the
// company's zone (Asia/Ho_Chi_Minh unless the map config says otherwise), whatever zone
// the browser is in; and the server's clock, which device times are compared with.

import { locale } from "./i18n.js";

let timeZone = "Asia/Ho_Chi_Minh";
let serverOffsetMs = 0;
const formatters = new Map();

export function setTimeZone(zone) {
  if (zone) timeZone = zone;
  formatters.clear();
}

/** Now by the server's clock, learnt from its heartbeats. */
export function serverNow() {
  return Date.now() + serverOffsetMs;
}

export function learnServerTime(iso) {
  const at = Date.parse(iso);
  if (!Number.isNaN(at)) serverOffsetMs = at - Date.now();
}

function parts(ms) {
  let formatter = formatters.get("parts");
  if (!formatter) {
    formatter = new Intl.DateTimeFormat("en-GB", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set("parts", formatter);
  }
  const out = {};
  for (const part of formatter.formatToParts(ms)) out[part.type] = part.value;
  return out;
}

function toMs(time) {
  if (time === null || time === undefined || time === "") return NaN;
  return typeof time === "number" ? time : Date.parse(time);
}

/** "HH:mm:ss" in local time; "" for no time. */
export function clockTime(time) {
  const ms = toMs(time);
  if (Number.isNaN(ms)) return "";
  const p = parts(ms);
  return `${p.hour}:${p.minute}:${p.second}`;
}

/** "HH:mm" in local time. */
export function clockMinutes(time) {
  return clockTime(time).slice(0, 5);
}

/** "HH:mm:ss" today, "dd/MM HH:mm:ss" another day. */
export function whenText(time) {
  const ms = toMs(time);
  if (Number.isNaN(ms)) return "";
  const p = parts(ms);
  const today = localDate(serverNow()) === `${p.year}-${p.month}-${p.day}`;
  return today ? clockTime(ms) : `${p.day}/${p.month} ${clockTime(ms)}`;
}

/** The local calendar date "YYYY-MM-DD" of an instant (default: now). */
export function localDate(time = serverNow()) {
  const p = parts(toMs(time));
  return `${p.year}-${p.month}-${p.day}`;
}

/** The value of an <input type="datetime-local"> showing ``time`` in local time. */
export function wallInput(time) {
  const p = parts(toMs(time));
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

/** The instant (ms) a local wall time "YYYY-MM-DDTHH:mm[:ss]" stands for; NaN if not one. */
export function wallInputToMs(value) {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value || "");
  if (!match) return NaN;
  const [, y, mo, d, h, mi, s] = match.map(Number);
  const asUtc = Date.UTC(y, mo - 1, d, h, mi, s || 0);
  // Twice: the zone's offset at the guess, then at the answer (they differ across DST).
  let ms = asUtc - zoneOffsetMs(asUtc);
  ms = asUtc - zoneOffsetMs(ms);
  return ms;
}

function zoneOffsetMs(ms) {
  const p = parts(ms);
  const wall = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return wall - (ms - (ms % 1000));
}

/** "1:05:09" for 3909 s, "5:09" under an hour. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "–";
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mm = String(m).padStart(2, "0");
  const ss = String(s).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${m}:${ss}`;
}

export function number(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return new Intl.NumberFormat(locale(), {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  }).format(value);
}

/** "12,3 km" (vi) / "12.3 km" (en) from metres. */
export function km(metres) {
  if (metres === null || metres === undefined) return "–";
  return `${number(metres / 1000, 1)} km`;
}

export function speed(kmh) {
  if (kmh === null || kmh === undefined) return "–";
  return `${number(kmh, 0)} km/h`;
}

/** "85 %" from 0.85; "–" when there is no share (nothing to divide). */
export function percent(share) {
  if (share === null || share === undefined) return "–";
  return `${number(share * 100, 0)} %`;
}
