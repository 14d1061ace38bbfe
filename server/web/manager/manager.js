// The managers' coverage pages: were the planned stops reached at the planned times? A map of
// the stops coloured by coverage, a weekday × hour heat map, the trend over weeks, the gaps,
// two periods side by side, and exports. Aggregates only: nothing here names a worker.

import { api, currentPerson, loginForm, signOut, Problem } from '/shared/api.js';
import { t, setLang, lang, translate, addTexts } from '/shared/i18n.js';
import { h, $, show, table as fillTable } from '/shared/dom.js';
import { baseMap } from '/shared/map.js';
import { TEXTS } from '/manager/texts.js';
import * as coverage from '/manager/coverage.js';

addTexts(TEXTS);

const page = { me: null, map: null, layer: null, report: null, compare: null };

addEventListener('DOMContentLoaded', async () => {
  translate(document);
  $('#lang').addEventListener('change', (e) => { setLang(e.target.value); render(); });
  $('#print').addEventListener('click', () => print());
  $('#sign-out').addEventListener('click', async () => { await signOut().catch(() => {}); show('login'); });
  $('#period').addEventListener('submit', (e) => { e.preventDefault(); load(); });
  loginForm($('#login'), enter);
  const me = await currentPerson();
  me ? enter(me) : show('login');
});

function enter(me) {
  page.me = me;
  if (me.role === 'worker') return show('forbidden');
  $('#who').textContent = me.display_name;
  $('#lang').value = lang();
  const teams = $('#team');
  teams.replaceChildren(...me.teams.map((id, i) => h('option', { value: id }, `${t('team')} ${i + 1}`)));
  teams.closest('label').hidden = me.teams.length < 2;
  const [from, to] = coverage.lastWeeks(new Date(), 4);
  const form = $('#period');
  form.from.value = from;
  form.to.value = to;
  show('report');
  load();
}

async function load() {
  const form = $('#period');
  const team = form.team.value || page.me.teams[0];
  $('#report-error').textContent = '';
  try {
    page.report = await api('GET', coverage.reportUrl(team, form.from.value, form.to.value));
    page.compare = form.from2.value && form.to2.value
      ? await api('GET', coverage.reportUrl(team, form.from2.value, form.to2.value))
      : null;
  } catch (e) {
    if (e instanceof Problem && e.status === 403) return show('forbidden');
    $('#report-error').textContent = e.message;
    return;
  }
  renderExports(team, form.from.value, form.to.value);
  await render();
}

async function render() {
  if (!page.report) return;
  renderTotals();
  await renderMap();
  renderTrend();
  renderHeat();
  renderGaps();
  renderRoutes();
  renderPlaces();
  renderIncidents();
}

const pct = (share) => (share === null || share === undefined ? t('none') : `${Math.round(share * 100)} %`);
const secs = (s) => (s === null || s === undefined ? t('none') : `${s.toFixed(1)} s`);
const windowText = (s) => `${t(`weekday_${s.weekday}`)} ${s.opens.slice(0, 5)}–${s.closes.slice(0, 5)}`;

const table = (el, head, rows) => fillTable(el, head, rows, t('nothing'));

function renderTotals() {
  const reports = [page.report, page.compare].filter(Boolean);
  const head = ['', ...reports.map((r) => `${r.from} – ${r.to}`)];
  if (page.compare) head.push(t('change'));
  const lines = coverage.figures(page.report, page.compare);
  table($('#totals'), head, lines.map((f) => {
    const cells = [t(f.key), ...f.values.map((v) => format(f, v))];
    if (page.compare) cells.push(f.delta === null ? t('none') : deltaText(f));
    return cells;
  }));
}

function format(f, v) {
  if (f.kind === 'share') return pct(v);
  if (f.kind === 'seconds') return secs(v);
  return v === null ? t('none') : String(v);
}

function deltaText(f) {
  const sign = f.delta > 0 ? '+' : '';
  if (f.kind === 'share') return `${sign}${Math.round(f.delta * 100)} ${t('points')}`;
  if (f.kind === 'seconds') return `${sign}${f.delta.toFixed(1)} s`;
  return `${sign}${f.delta}`;
}

async function renderMap() {
  const places = coverage.byPlace(page.report.stops);
  if (!window.L) {
    // Without Leaflet the stops are still listed, coloured.
    $('#map').replaceChildren(h('ul', {}, places.map((p) => h('li', { class: coverage.grade(p.tally) }, `${p.name}: ${pct(coverage.reached(p.tally))}`))));
    return;
  }
  if (!page.map) {
    page.map = await baseMap('map');
    page.layer = L.layerGroup().addTo(page.map);
  }
  page.layer.clearLayers();
  const points = [];
  for (const p of places) {
    const grade = coverage.grade(p.tally);
    const marker = L.circleMarker([p.lat, p.lon], { radius: 10, weight: 3, className: `stop ${grade}`, color: '#000', fillColor: coverage.COLOURS[grade], fillOpacity: 0.9 });
    marker.bindTooltip(`${p.name}: ${pct(coverage.reached(p.tally))} (${p.tally.covered + p.tally.late}/${p.tally.planned})`, { permanent: places.length <= 30, direction: 'right' });
    marker.addTo(page.layer);
    points.push([p.lat, p.lon]);
  }
  if (points.length) page.map.fitBounds(points, { padding: [30, 30], maxZoom: 15 });
}

function renderTrend() {
  const weeks = page.report.weeks;
  const el = $('#trend');
  if (!weeks.length) return el.replaceChildren(h('p', { class: 'muted' }, t('nothing')));
  el.replaceChildren(coverage.trendSvg(weeks, (w) => `${t('week')} ${w.week}`, (s) => pct(s)));
}

function renderHeat() {
  const grid = coverage.heatGrid(page.report.heat);
  const hours = grid.hours;
  const head = h('tr', {}, h('th', {}, ''), hours.map((hour) => h('th', { scope: 'col' }, String(hour).padStart(2, '0'))));
  const rows = grid.rows.map((row) => h('tr', {},
    h('th', { scope: 'row' }, t(`weekday_${row.weekday}`)),
    row.cells.map((c) => {
      if (!c) return h('td', {}, '');
      const label = `${t(`weekday_${row.weekday}`)} ${c.hour}: ${pct(coverage.reached(c.tally))}, ${c.visits} ${t('visits')}`;
      return h('td', { class: `cell ${c.tally.planned ? coverage.grade(c.tally) : 'none'}`, title: label, 'aria-label': label },
        c.tally.planned ? pct(coverage.reached(c.tally)) : String(c.visits));
    })));
  $('#heat').replaceChildren(h('thead', {}, head), h('tbody', {}, rows));
}

function renderGaps() {
  table($('#gaps'), [t('place'), t('route'), t('window'), t('missed')],
    page.report.gaps.map((g) => [g.place_name, g.route_name, windowText(g), `${g.tally.missed}/${g.tally.planned}`]));
}

function renderRoutes() {
  const tallyCells = (x) => [pct(coverage.reached(x.tally)), `${x.tally.covered}`, `${x.tally.late}`, `${x.tally.missed}`];
  const head = ['', t('reached'), t('covered'), t('late'), t('missed')];
  const rows = [
    ...page.report.routes.map((r) => [`${t('route')}: ${r.name}`, ...tallyCells(r)]),
    ...page.report.areas.map((a) => [`${t('area')}: ${a.name ?? t('no_area')}`, ...tallyCells(a)]),
  ];
  table($('#routes'), head, rows);
}

function renderPlaces() {
  table($('#places'), [t('place'), t('visits')], page.report.places.map((p) => [p.name, String(p.visits)]));
}

function renderIncidents() {
  table($('#incidents'), [t('place'), t('kind'), t('count')],
    page.report.incidents.map((i) => [i.place_name, t(i.kind), String(i.count)]));
}

function renderExports(team, from, to) {
  $('#exports').replaceChildren(...coverage.exports(team, from, to).map((x) =>
    h('a', { href: x.href, download: x.file, class: 'export' }, t(x.label))));
}
