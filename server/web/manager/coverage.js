// The coverage pages' arithmetic and drawing, apart from the page: plain functions of the
// report (GET /api/v1/teams/{team_id}/coverage), so they can be read and checked on their own.

/// Coverage at or above `good` is green, at or above `fair` amber, below that red.
export const THRESHOLDS = { good: 0.8, fair: 0.5 };
export const COLOURS = { good: '#0a7d32', fair: '#e0a100', poor: '#c00000', none: '#ffffff' };

export function reportUrl(team, from, to) {
  return `/api/v1/teams/${encodeURIComponent(team)}/coverage?${new URLSearchParams({ from, to })}`;
}

/// The downloads of a period: tables as CSV, the stops as GeoJSON (RFC 7946).
export function exports(team, from, to) {
  const base = `/api/v1/teams/${encodeURIComponent(team)}/coverage`;
  const q = new URLSearchParams({ from, to });
  const tables = ['stops', 'weeks', 'routes', 'areas', 'heat', 'gaps', 'places', 'incidents'];
  return [
    ...tables.map((table) => ({
      href: `${base}/csv?${q}&table=${table}`,
      file: `makker-coverage-${table}-${from}-${to}.csv`,
      label: `csv_${table}`,
    })),
    { href: `${base}/map?${q}`, file: `makker-stops-${from}-${to}.geojson`, label: 'geojson_stops' },
  ];
}

/// The last `n` whole weeks before `today` (Monday to Sunday), as ISO dates.
export function lastWeeks(today, n) {
  const d = new Date(Date.UTC(today.getFullYear(), today.getMonth(), today.getDate()));
  const sinceMonday = (d.getUTCDay() + 6) % 7;
  const end = new Date(d - (sinceMonday + 1) * 864e5);
  const start = new Date(end - (7 * n - 1) * 864e5);
  return [start.toISOString().slice(0, 10), end.toISOString().slice(0, 10)];
}

/// Windows reached at all (on time or late), as a share of those planned; null when none.
export function reached(tally) {
  return tally.planned ? (tally.covered + tally.late) / tally.planned : null;
}

export function grade(tally) {
  const share = reached(tally);
  if (share === null) return 'none';
  if (share >= THRESHOLDS.good) return 'good';
  return share >= THRESHOLDS.fair ? 'fair' : 'poor';
}

/// Stops summed per place (a place may be a stop on several days and routes).
export function byPlace(stops) {
  const places = new Map();
  for (const s of stops) {
    const p = places.get(s.place_id) ?? { id: s.place_id, name: s.place_name, lat: s.lat, lon: s.lon, tally: { planned: 0, covered: 0, late: 0, missed: 0 } };
    for (const k of ['planned', 'covered', 'late', 'missed']) p.tally[k] += s.tally[k];
    places.set(s.place_id, p);
  }
  return [...places.values()];
}

/// The headline figures of a report, with the other period's and the change when compared.
export function figures(report, other) {
  const rows = (r) => [
    { key: 'planned', kind: 'count', value: r.totals.planned },
    { key: 'covered', kind: 'count', value: r.totals.covered },
    { key: 'late', kind: 'count', value: r.totals.late },
    { key: 'missed', kind: 'count', value: r.totals.missed },
    { key: 'reached', kind: 'share', value: reached(r.totals) },
    { key: 'visits', kind: 'count', value: r.two_person.visits },
    { key: 'two_person_share', kind: 'share', value: r.two_person.met_policy_share },
    { key: 'alarms', kind: 'count', value: r.alarms.alarms },
    { key: 'ack_median', kind: 'seconds', value: r.alarms.median_s },
    { key: 'ack_p90', kind: 'seconds', value: r.alarms.p90_s },
    { key: 'ack_within_10', kind: 'share', value: r.alarms.within_10s_share },
    { key: 'ack_within_40', kind: 'share', value: r.alarms.within_40s_share },
    { key: 'drills', kind: 'count', value: r.drills.alarms },
    { key: 'incidents', kind: 'count', value: r.incidents.reduce((n, i) => n + i.count, 0) },
  ];
  const mine = rows(report);
  const theirs = other ? rows(other) : null;
  return mine.map((f, i) => {
    const values = theirs ? [f.value, theirs[i].value] : [f.value];
    const delta = theirs && f.value !== null && theirs[i].value !== null ? f.value - theirs[i].value : null;
    return { key: f.key, kind: f.kind, values, delta };
  });
}

/// Rows Monday…Sunday, columns the hours that have anything, each cell the report's or null.
export function heatGrid(cells) {
  const hours = [...new Set(cells.map((c) => c.hour))].sort((a, b) => a - b);
  const rows = [1, 2, 3, 4, 5, 6, 7].map((weekday) => ({
    weekday,
    cells: hours.map((hour) => cells.find((c) => c.weekday === weekday && c.hour === hour) ?? null),
  }));
  return { hours, rows };
}

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

/// A bar per week: the share of windows reached, with its label; no chart library needed.
export function trendSvg(weeks, weekLabel, shareLabel) {
  const bar = 44, gap = 12, height = 160, top = 20, base = top + height;
  const width = weeks.length * (bar + gap) + gap;
  const root = svg('svg', { viewBox: `0 0 ${width} ${base + 40}`, role: 'img', class: 'trend' });
  root.append(svg('line', { x1: 0, y1: base, x2: width, y2: base, stroke: '#000' }));
  weeks.forEach((w, i) => {
    const share = reached(w.tally) ?? 0;
    const x = gap + i * (bar + gap);
    const y = base - share * height;
    const label = `${weekLabel(w)}: ${shareLabel(reached(w.tally))}`;
    const rect = svg('rect', { x, y, width: bar, height: base - y, fill: COLOURS[grade(w.tally)], stroke: '#000' });
    rect.append(svg('title', {}, label));
    root.append(rect, svg('text', { x: x + bar / 2, y: y - 4, 'text-anchor': 'middle', 'font-size': 12 }, shareLabel(reached(w.tally))),
      svg('text', { x: x + bar / 2, y: base + 16, 'text-anchor': 'middle', 'font-size': 12 }, weekLabel(w)));
  });
  root.setAttribute('aria-label', weeks.map((w) => `${weekLabel(w)}: ${shareLabel(reached(w.tally))}`).join(', '));
  return root;
}
