// The planning page: a team's areas (districts, drawn on a map) and routes (stops at places on
// weekdays between two times of day), imported from and exported to GeoJSON (RFC 7946), and
// routes created and edited in a form. Managers and admins change them; supervisors read;
// workers are turned away. The server checks everything; its refusals are shown as they come.

import { api, currentPerson, loginForm, signOut, Problem } from '/shared/api.js';
import { t, setLang, lang, translate, addTexts } from '/shared/i18n.js';
import { h, $, show, table } from '/shared/dom.js';
import { baseMap } from '/shared/map.js';
import { TEXTS } from '/manager/texts.js';
import { PLAN_TEXTS } from '/manager/plan-texts.js';

addTexts(TEXTS);
addTexts(PLAN_TEXTS);

const WEEKDAYS = [1, 2, 3, 4, 5, 6, 7];
const page = { me: null, team: null, planner: false, places: [], areas: null, routes: [], map: null, layer: null, editing: null };

addEventListener('DOMContentLoaded', async () => {
  translate(document);
  $('#lang').addEventListener('change', (e) => { setLang(e.target.value); render(); });
  $('#sign-out').addEventListener('click', async () => { await signOut().catch(() => {}); show('login'); });
  $('#team').addEventListener('change', (e) => { page.team = e.target.value; closeForm(); load(); });
  $('#areas-file').addEventListener('change', (e) => importFile(e.target, 'areas'));
  $('#routes-file').addEventListener('change', (e) => importFile(e.target, 'routes'));
  $('#new-route').addEventListener('click', () => openForm(null));
  $('#add-stop').addEventListener('click', () => addStop(undefined, true));
  $('#close-route').addEventListener('click', closeForm);
  $('#route-form').addEventListener('submit', (e) => { e.preventDefault(); saveRoute(); });
  loginForm($('#login'), enter);
  const me = await currentPerson();
  me ? enter(me) : show('login');
});

function enter(me) {
  page.me = me;
  if (me.role === 'worker' || !me.teams.length) return show('forbidden');
  page.planner = me.role === 'manager' || me.role === 'admin';
  document.body.dataset.mode = page.planner ? 'plan' : 'read';
  for (const el of document.querySelectorAll('.planner')) el.hidden = !page.planner;
  $('#read-only').hidden = page.planner;
  $('#who').textContent = me.display_name;
  $('#lang').value = lang();
  const teams = $('#team');
  teams.replaceChildren(...me.teams.map((id, i) => h('option', { value: id }, `${t('team')} ${i + 1}`)));
  teams.closest('label').hidden = me.teams.length < 2;
  page.team = me.teams[0];
  show('plan');
  load();
}

const teamUrl = (rest) => `/api/v1/teams/${encodeURIComponent(page.team)}${rest}`;

async function load() {
  $('#areas-export').href = teamUrl('/areas');
  $('#routes-export').href = teamUrl('/routes/export');
  for (const id of ['#areas-error', '#areas-status', '#routes-error', '#routes-status']) $(id).textContent = '';
  try {
    const [places, areas, routes] = await Promise.all(
      ['/places', '/areas', '/routes'].map((path) => api('GET', teamUrl(path))));
    Object.assign(page, { places, areas, routes });
  } catch (e) {
    if (e instanceof Problem && e.status === 403) return show('forbidden');
    $('#areas-error').textContent = e.message;
    return;
  }
  await render();
  document.body.dataset.loaded = page.team;
}

async function render() {
  if (!page.areas) return;
  renderAreas();
  renderRoutes();
  await renderMap();
}

const byName = (a, b) => a.localeCompare(b, lang());

// --- areas ------------------------------------------------------------------------------

function renderAreas() {
  const features = [...page.areas.features].sort((a, b) => byName(a.properties.name, b.properties.name));
  const head = page.planner ? [t('name'), h('span', { class: 'sr-only' }, t('actions'))] : [t('name')];
  table($('#areas'), head, features.map((f) => {
    const name = f.properties.name;
    if (!page.planner) return [name];
    return [name, h('button', { type: 'button', class: 'danger', 'aria-label': `${t('delete')}: ${name}`, onclick: () => deleteArea(f) }, t('delete'))];
  }), t('no_areas'));
}

async function deleteArea(feature) {
  const name = feature.properties.name;
  if (!confirm(t('confirm_delete_area').replace('{name}', name))) return;
  $('#areas-error').textContent = '';
  try {
    await api('DELETE', teamUrl(`/areas/${encodeURIComponent(feature.properties.id)}`));
    page.areas = await api('GET', teamUrl('/areas'));
    $('#areas-status').textContent = `${t('area_deleted')}: ${name}`;
  } catch (e) {
    $('#areas-error').textContent = e.message;
  }
  await render();
}

async function renderMap() {
  if (!window.L) return; // the list of areas says it all without Leaflet
  page.map ??= baseMap('map');
  const map = await page.map;
  page.layer ??= L.layerGroup().addTo(map);
  page.layer.clearLayers();
  const areas = L.geoJSON(page.areas, {
    style: { color: '#003d99', weight: 3, fillColor: '#003d99', fillOpacity: 0.12, className: 'area' },
    onEachFeature: (f, layer) => layer.bindTooltip(f.properties.name, { sticky: true }),
  }).addTo(page.layer);
  const bounds = areas.getBounds();
  for (const p of page.places) {
    const at = [p.center.lat, p.center.lon];
    L.circleMarker(at, { radius: 7, weight: 2, color: '#000', fillColor: '#ffd500', fillOpacity: 1, className: 'place' })
      .bindTooltip(p.name).addTo(page.layer);
    bounds.extend(at);
  }
  if (bounds.isValid()) map.fitBounds(bounds, { padding: [20, 20], maxZoom: 15 });
}

// --- import -----------------------------------------------------------------------------

/// Sends a chosen file to `…/areas/import` or `…/routes/import`: all of it is taken, or none
/// (the server says why, and the lists stay as they were).
async function importFile(input, what) {
  const file = input.files[0];
  if (!file) return;
  const error = $(`#${what}-error`);
  const status = $(`#${what}-status`);
  error.textContent = '';
  status.textContent = '';
  const text = await file.text();
  input.value = ''; // the same file may be chosen again after a fix
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    error.textContent = `${t('import_failed')} (${file.name}): ${t('not_json')}`;
    return;
  }
  try {
    const answer = await api('POST', teamUrl(`/${what}/import`), body);
    if (what === 'areas') page.areas = answer;
    else page.routes = answer;
    status.textContent = `${t(`${what}_imported`)} (${file.name})`;
  } catch (e) {
    error.textContent = `${t('import_failed')} (${file.name}): ${e.message}`;
  }
  await render();
}

// --- routes -----------------------------------------------------------------------------

const today = () => new Date().toLocaleDateString('sv'); // YYYY-MM-DD, local
const ended = (r) => r.valid_until && r.valid_until < today();

function renderRoutes() {
  const action = page.planner ? 'edit' : 'view';
  const routes = [...page.routes].sort((a, b) => byName(a.name, b.name));
  table($('#routes'), [t('route'), t('valid'), t('stops_per_week'), h('span', { class: 'sr-only' }, t('actions'))],
    routes.map((r) => [
      r.name,
      `${r.valid_from} – ${r.valid_until ?? t('open_ended')}${ended(r) ? ` (${t('ended')})` : ''}`,
      String(r.stops.length),
      h('button', { type: 'button', 'aria-label': `${t(action)}: ${r.name}`, onclick: () => openForm(r) }, t(action)),
    ]), t('no_routes'));
}

/// A route's stops as the form's rows: one row per place and window, with its weekdays.
function groupStops(stops) {
  const rows = new Map();
  for (const s of stops) {
    const opens = s.opens.slice(0, 5);
    const closes = s.closes.slice(0, 5);
    const key = `${s.place_id} ${opens} ${closes}`;
    const row = rows.get(key) ?? { place_id: s.place_id, place_name: s.place_name, opens, closes, weekdays: [] };
    if (!row.weekdays.includes(s.weekday)) row.weekdays.push(s.weekday);
    rows.set(key, row);
  }
  return [...rows.values()];
}

/// The form's rows as the API's stops: one per weekday.
const expandRows = (rows) => rows.flatMap((r) =>
  r.weekdays.map((weekday) => ({ place_id: r.place_id, weekday, opens: r.opens, closes: r.closes })));

function openForm(route) {
  page.editing = route;
  const form = $('#route-form');
  $('#route-error').textContent = '';
  $('#h-route').dataset.i18n = !route ? 'new_route' : page.planner ? 'edit_route' : 'show_route';
  $('#route-name').value = route?.name ?? '';
  $('#valid-from').value = route?.valid_from ?? today();
  $('#valid-until').value = route?.valid_until ?? '';
  $('#stops').replaceChildren();
  const rows = route ? groupStops(route.stops) : [{ place_id: '', weekdays: [1, 2, 3, 4, 5], opens: '10:00', closes: '12:00' }];
  for (const row of rows) addStop(row);
  $('#route-fields').disabled = !page.planner;
  translate(form);
  form.hidden = false;
  $('#h-route').focus();
}

function closeForm() {
  const form = $('#route-form');
  const hadFocus = form.contains(document.activeElement);
  page.editing = null;
  form.hidden = true;
  if (hadFocus) $(page.planner ? '#new-route' : '#routes button')?.focus();
}

/// Adds a stop row: a place, weekdays and a window, all labelled.
function addStop(row = { place_id: '', weekdays: [], opens: '', closes: '' }, focus = false) {
  const fs = h('fieldset', { class: 'stop' });
  const id = `stop-${Math.random().toString(36).slice(2, 9)}`;
  const options = [h('option', { value: '', 'data-i18n': 'choose_place' }),
    ...page.places.map((p) => h('option', { value: p.id }, p.name))];
  // A place the page may not list (a home, for a manager) keeps its name from the route.
  if (row.place_id && !page.places.some((p) => p.id === row.place_id)) {
    options.push(h('option', { value: row.place_id }, row.place_name));
  }
  const select = h('select', { id: `${id}-place`, name: 'place', required: true }, options);
  select.value = row.place_id;
  const time = (name, value) => h('label', {}, h('span', { 'data-i18n': name }),
    h('input', { type: 'time', name, value, required: true }));
  fs.append(
    h('legend', {}, h('span', { 'data-i18n': 'stop' }), ' ', h('span', { class: 'n' })),
    h('label', { for: select.id, 'data-i18n': 'place' }), select,
    h('fieldset', { class: 'days' }, h('legend', { 'data-i18n': 'weekdays' }),
      WEEKDAYS.map((d) => h('label', { class: 'day' },
        h('input', { type: 'checkbox', name: 'weekday', value: d, checked: row.weekdays.includes(d) }),
        h('span', { 'data-i18n': `weekday_${d}` })))),
    h('div', { class: 'window' }, time('opens', row.opens), time('closes', row.closes)),
    h('button', { type: 'button', class: 'remove', hidden: !page.planner, 'data-i18n': 'remove_stop',
      onclick: () => { fs.remove(); numberStops(); $('#add-stop').focus(); } }),
  );
  $('#stops').append(fs);
  translate(fs);
  numberStops();
  if (focus) select.focus();
}

function numberStops() {
  [...$('#stops').children].forEach((fs, i) => { fs.querySelector('legend .n').textContent = String(i + 1); });
}

function readRow(fs) {
  return {
    place_id: fs.querySelector('[name=place]').value,
    weekdays: [...fs.querySelectorAll('[name=weekday]:checked')].map((c) => Number(c.value)),
    opens: fs.querySelector('[name=opens]').value,
    closes: fs.querySelector('[name=closes]').value,
  };
}

async function saveRoute() {
  const error = $('#route-error');
  error.textContent = '';
  const rows = [...$('#stops').children].map(readRow);
  const bad = rows.findIndex((r) => !r.weekdays.length);
  if (bad >= 0) {
    error.textContent = `${t('stop')} ${bad + 1}: ${t('no_weekday')}`;
    return;
  }
  const body = { name: $('#route-name').value, valid_from: $('#valid-from').value, stops: expandRows(rows) };
  if ($('#valid-until').value) body.valid_until = $('#valid-until').value;
  try {
    const saved = page.editing
      ? await api('PUT', teamUrl(`/routes/${encodeURIComponent(page.editing.id)}`), body)
      : await api('POST', teamUrl('/routes'), body);
    page.routes = [...page.routes.filter((r) => r.id !== saved.id), saved];
    closeForm();
    $('#routes-status').textContent = `${t('route_saved')}: ${saved.name}`;
    renderRoutes();
  } catch (e) {
    error.textContent = `${t('not_saved')}: ${e.message}`;
  }
}
