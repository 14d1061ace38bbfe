// The supervisors' live board: everyone on shift in my teams with their state, open alarms on
// top with a sound and a flash, acknowledge and resolve, each alarm's escalation trail, and a
// map. Fed by the live stream (`/api/v1/live`, Server-Sent Events): a snapshot, then changes;
// the browser resumes with Last-Event-ID after a break, and a banner shows while it is away.

import { api, currentPerson, loginForm, signOut } from '/shared/api.js';
import { t, setLang, lang, translate, clock, countdown, addTexts } from '/shared/i18n.js';
import { h, $, show } from '/shared/dom.js';
import { kindPicker, incidentBody, monthsAhead, WARNING_MONTHS } from '/shared/incident.js';
import { initApprovals, snapshotAsks, asked, answered, approveButton } from './approvals.js';

const OUTCOMES = ['worker_safe', 'police_called', 'false_alarm', 'other'];
/// How often an open alarm beeps, and how often its trail is read again.
const BEEP_EVERY_MS = 1200;
const TRAIL_EVERY_MS = 5000;
/// After the stream gives up (an HTTP error), open it again after this long.
const REOPEN_MS = 2000;
/// A battery under this many percent is shown as low; a report older than this many minutes
/// shows its age (phones report at least every 5 minutes while on shift).
const LOW_BATTERY = 20;
const STALE_MINUTES = 10;

addTexts({
  da: { charging: 'Lader', battery_low: 'Lavt batteri', report: 'Rapportér', reported: 'Rapporteret', places: 'Teamets steder',
    warn_place: 'Sæt en advarsel på stedet', warning_text: 'Advarslens tekst (aldrig navne)', warning_until: 'Advarslen gælder til',
    incident: 'Hændelse' },
  sv: { charging: 'Laddar', battery_low: 'Lågt batteri', report: 'Rapportera', reported: 'Rapporterad', places: 'Teamets platser',
    warn_place: 'Sätt en varning på platsen', warning_text: 'Varningens text (aldrig namn)', warning_until: 'Varningen gäller till',
    incident: 'Händelse' },
  en: { charging: 'Charging', battery_low: 'Low battery', report: 'Report', reported: 'Reported', places: 'The team’s places',
    warn_place: 'Put a warning on the place', warning_text: 'Warning text (never names)', warning_until: 'Warning valid until',
    incident: 'Incident' },
});

const board = {
  me: null,
  visits: new Map(),
  alarms: new Map(),
  shifts: new Map(),
  names: new Map(),
  places: new Map(),
  /// Phones' battery by person: { battery_pct, charging, reported_at }.
  status: new Map(),
  /// Visits and places an incident was reported for (from this board or the last two days).
  reported: new Set(),
  live: null,
  map: null,
  layers: null,
  audio: null,
};

addEventListener('DOMContentLoaded', async () => {
  translate(document);
  $('#lang').addEventListener('change', (e) => { setLang(e.target.value); renderAlarms(true); renderPeople(); });
  loginForm($('#login'), enter);
  $('#sign-out').addEventListener('click', async () => {
    await signOut().catch(() => {});
    board.live?.close();
    show('login');
  });
  $('#sound').addEventListener('click', enableSound);
  wireIncidentDialog();
  setInterval(renderPeople, 1000);
  setInterval(beep, BEEP_EVERY_MS);
  setInterval(refreshTrails, TRAIL_EVERY_MS);
  const me = await currentPerson();
  me ? enter(me) : show('login');
});

async function enter(me) {
  board.me = me;
  // The live stream is for supervisors and administrators (managers see aggregates).
  if (!['supervisor', 'admin'].includes(me.role)) return show('forbidden');
  board.names.set(me.id, me.display_name);
  $('#who').textContent = me.display_name;
  $('#lang').value = lang();
  show('board');
  enableSound();
  initApprovals(() => board.places);
  await setUpMap();
  connect();
}

// --- the live stream ---------------------------------------------------------------------

function connect() {
  const live = new EventSource('/api/v1/live');
  board.live = live;
  live.addEventListener('open', () => lost(false));
  live.addEventListener('error', () => {
    lost(true);
    // An HTTP error ends the stream for good: open a new one (it starts with a snapshot).
    if (live.readyState === EventSource.CLOSED && board.live === live) setTimeout(connect, REOPEN_MS);
  });
  live.addEventListener('snapshot', (e) => snapshot(JSON.parse(e.data), e.lastEventId));
  live.addEventListener('visit', (e) => changed(() => upsert(board.visits, JSON.parse(e.data), (v) => v.state !== 'active'), e));
  live.addEventListener('alarm', (e) => changed(() => upsert(board.alarms, JSON.parse(e.data), (a) => a.state === 'resolved'), e));
  live.addEventListener('shift', (e) => changed(() => shift(JSON.parse(e.data)), e));
  live.addEventListener('status', (e) => changed(() => phoneStatus(JSON.parse(e.data)), e));
  live.addEventListener('approval_request', (e) => changed(() => asked(JSON.parse(e.data)), e));
  live.addEventListener('approval_answer', (e) => changed(() => answered(JSON.parse(e.data)), e));
}

function lost(yes) {
  $('#live-lost').hidden = !yes;
  document.body.dataset.live = yes ? 'lost' : 'connected';
}

function snapshot(data, id) {
  document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots ?? 0) + 1);
  board.visits = new Map(data.visits.map((v) => [v.id, v]));
  board.alarms = new Map(data.alarms.map((a) => [a.id, a]));
  board.shifts = new Map(data.on_shift.map((s) => [s.person_id, s.started_at]));
  for (const s of data.on_shift) board.names.set(s.person_id, s.display_name);
  board.status = new Map(data.on_shift.filter((s) => s.battery_pct !== null && s.battery_pct !== undefined)
    .map((s) => [s.person_id, { battery_pct: s.battery_pct, charging: s.charging, reported_at: s.reported_at }]));
  snapshotAsks(data.approval_requests ?? []);
  changed(() => {}, { lastEventId: id });
  learnNames();
}

function changed(apply, event) {
  apply();
  document.body.dataset.lastEventId = event.lastEventId;
  renderAlarms();
  renderPeople();
  renderMap();
}

function upsert(map, item, gone) {
  if (gone(item)) map.delete(item.id);
  else map.set(item.id, item);
}

function shift(s) {
  if (s.ended_at) board.shifts.delete(s.person);
  else board.shifts.set(s.person, s.started_at);
  // A phone's status belongs to one shift: a new or ended one shows none.
  board.status.delete(s.person);
  if (!board.names.has(s.person)) learnNames();
}

/// Names of the people on shift (events carry ids only).
async function learnNames() {
  const colleagues = await api('GET', '/api/v1/colleagues').catch(() => []);
  for (const c of colleagues) board.names.set(c.person_id, c.display_name);
  renderAlarms(true);
  renderPeople();
  renderMap();
}

const nameOf = (id) => board.names.get(id) ?? '…';

function phoneStatus(s) {
  board.status.set(s.person, { battery_pct: s.battery_pct, charging: s.charging, reported_at: s.reported_at });
}

/// "57 %", a charging mark, a low style under 20 %, and how old once older than 10 minutes.
function batteryCell(id) {
  const s = board.status.get(id);
  if (!s) return h('td', { class: 'battery muted' }, t('none'));
  const low = s.battery_pct < LOW_BATTERY;
  const minutes = Math.floor((Date.now() - Date.parse(s.reported_at)) / 60000);
  return h('td', {
    class: low ? 'battery low' : 'battery',
    title: low ? t('battery_low') : null,
    dataset: { battery: String(s.battery_pct), charging: String(s.charging === true), low: String(low) },
  },
  low ? h('span', { class: 'sr-only' }, `${t('battery_low')}: `) : null,
  `${s.battery_pct} %`,
  s.charging ? h('span', { class: 'charging', title: t('charging'), 'aria-label': t('charging') }, ' ⚡') : null,
  minutes >= STALE_MINUTES ? h('span', { class: 'age' }, ` · ${minutes} ${t('minutes')} ${t('ago')}`) : null);
}

// --- people ------------------------------------------------------------------------------

function visitOf(person) {
  for (const v of board.visits.values()) {
    if (v.participants.some((p) => p.person === person && !p.left_at)) return v;
  }
  return null;
}

function alarmOf(person) {
  return [...board.alarms.values()].find((a) => a.person === person) ?? null;
}

/// free, in_visit, overdue or alarm.
function stateOf(person, now = Date.now()) {
  if (alarmOf(person)) return 'alarm';
  const v = visitOf(person);
  if (!v) return 'free';
  const checkInDue = Date.parse(v.last_check_in_at) + v.terms.check_in_minutes * 60000;
  return now > Date.parse(v.planned_end) || now > checkInDue ? 'overdue' : 'in_visit';
}

function people() {
  const ids = new Set(board.shifts.keys());
  for (const v of board.visits.values()) for (const p of v.participants) if (!p.left_at) ids.add(p.person);
  for (const a of board.alarms.values()) ids.add(a.person);
  const order = { alarm: 0, overdue: 1, in_visit: 2, free: 3 };
  return [...ids].sort((a, b) => order[stateOf(a)] - order[stateOf(b)] || nameOf(a).localeCompare(nameOf(b)));
}

function renderPeople() {
  if (!board.me) return;
  const rows = people().map((id) => {
    const state = stateOf(id);
    const v = visitOf(id);
    const place = v ? board.places.get(v.place) : null;
    const partners = v ? v.participants.filter((p) => p.person !== id && !p.left_at).map((p) => nameOf(p.person)) : [];
    const left = v ? countdown((Date.parse(v.planned_end) - Date.now()) / 1000) : t('none');
    return h('tr', { class: state, dataset: { person: id, state } },
      h('td', {}, nameOf(id), id === board.me.id ? null : approveButton(id, nameOf(id))),
      h('td', {}, h('span', { class: `badge ${state}` }, t(state))),
      h('td', {}, v ? t(v.kind) : t('none')),
      h('td', {}, place?.name ?? (v ? '…' : t('none')), ...(place?.warnings ?? []).map((w) => h('div', { class: 'warning' }, `⚠ ${t(w.kind)}: ${w.text}`))),
      h('td', {}, partners.join(', ') || (v ? t('alone') : t('none'))),
      h('td', { class: 'left' }, left),
      h('td', {}, v ? clock(v.last_check_in_at) : t('none')),
      batteryCell(id),
      h('td', { class: 'incident' }, v ? reportControl({ visit: v.id, place: v.place, about: nameOf(id) }) : null));
  });
  $('#people tbody').replaceChildren(...rows);
}

// --- alarms ------------------------------------------------------------------------------

/// Open alarms first (oldest first: the longest unanswered on top), then acknowledged ones.
function sortedAlarms() {
  return [...board.alarms.values()].sort((a, b) =>
    (a.state === 'open' ? 0 : 1) - (b.state === 'open' ? 0 : 1) || a.raised_at.localeCompare(b.raised_at));
}

/// Cards are rebuilt only when their alarm changed, so a note being typed survives.
function renderAlarms(all = false) {
  const list = $('#alarms');
  const cards = sortedAlarms().map((a) => {
    const key = JSON.stringify(a);
    let card = list.querySelector(`[data-alarm="${a.id}"]`);
    if (!card || card.dataset.key !== key || all) {
      card = alarmCard(a);
      card.dataset.key = key;
      loadTrail(a.id, card);
    }
    return card;
  });
  list.replaceChildren(...cards);
  $('#no-alarms').hidden = cards.length > 0;
  const open = [...board.alarms.values()].some((a) => a.state === 'open');
  document.body.classList.toggle('alarming', open);
  document.body.dataset.openAlarms = String([...board.alarms.values()].filter((a) => a.state === 'open').length);
}

function alarmCard(a) {
  const v = a.visit ? board.visits.get(a.visit) : null;
  const place = v ? board.places.get(v.place) : null;
  const title = `${t(a.kind)} – ${nameOf(a.person)}${a.drill ? ` (${t('drill')})` : ''}`;
  return h('li', { class: `alarm-card ${a.state}`, dataset: { alarm: a.id, state: a.state, kind: a.kind }, 'aria-label': title },
    h('h3', {}, title),
    h('p', {}, `${t(a.state)} · ${clock(a.raised_at)}`,
      place ? ` · ${place.name}` : '',
      a.position ? ` · ${a.position.lat.toFixed(5)}, ${a.position.lon.toFixed(5)}` : ''),
    ...(place?.warnings ?? []).map((w) => h('p', { class: 'warning' }, `⚠ ${t(w.kind)}: ${w.text}`)),
    a.acknowledged_by ? h('p', {}, `${t('acknowledged_by')}: ${nameOf(a.acknowledged_by)} ${clock(a.acknowledged_at)}`) : null,
    actions(a),
    alarmIncident(a, title),
    h('details', { open: true }, h('summary', {}, t('trail')), h('ol', { class: 'trail' })));
}

function alarmIncident(a, title) {
  const v = a.visit ? board.visits.get(a.visit) : null;
  return h('div', { class: 'incident' }, reportControl({ visit: a.visit, place: v?.place, about: title }));
}

function actions(a) {
  if (a.state === 'open') {
    return h('div', { class: 'actions' },
      h('button', { class: 'danger ack', onclick: (e) => act(e.target, () => api('POST', `/api/v1/alarms/${a.id}/acknowledge`)) }, t('acknowledge')));
  }
  const outcome = h('select', { 'aria-label': t('outcome') }, ...OUTCOMES.map((o) => h('option', { value: o }, t(o))));
  const note = h('input', { type: 'text', 'aria-label': t('note'), placeholder: t('note'), maxlength: '2000' });
  const resolve = h('button', {
    class: 'ok resolve',
    onclick: (e) => act(e.target, () => api('POST', `/api/v1/alarms/${a.id}/resolve`, { outcome: outcome.value, note: note.value || null })),
  }, t('resolve'));
  return h('div', { class: 'actions' }, outcome, note, resolve);
}

/// A button's call; the change itself comes back on the live stream.
async function act(button, call) {
  button.disabled = true;
  try {
    await call();
  } catch (e) {
    button.after(h('p', { class: 'error', role: 'alert' }, e.message));
    button.disabled = false;
  }
}

async function loadTrail(id, card) {
  const trail = await api('GET', `/api/v1/alarms/${id}/deliveries`).catch(() => null);
  if (!trail) return;
  card.querySelector('.trail').replaceChildren(...trail.map((d) => {
    const outcome = d.receipt ?? d.state;
    return h('li', { class: outcome === 'failed' ? 'failed' : '', dataset: { channel: d.channel, state: d.state } },
      `${clock(d.queued_at)} ${d.recipient_name} · ${d.channel.toUpperCase()} · ${d.kind} · ${t(outcome)}`,
      d.provider ? ` (${d.provider})` : '',
      d.attempts.length > 1 ? ` · ${d.attempts.length}×` : '',
      d.last_error ? ` · ${d.last_error}` : '');
  }));
}

function refreshTrails() {
  for (const card of document.querySelectorAll('[data-alarm]')) loadTrail(card.dataset.alarm, card);
}

// --- sound -------------------------------------------------------------------------------

/// Browsers allow sound after a click: the sign-in, or this button after a reload.
function enableSound() {
  board.audio ??= new AudioContext();
  board.audio.resume().finally(soundButton);
}

function soundButton() {
  const on = board.audio?.state === 'running';
  const button = $('#sound');
  button.classList.toggle('on', on);
  button.textContent = t(on ? 'sound_playing' : 'sound_on');
  button.setAttribute('aria-pressed', String(on));
}

function beep() {
  const open = [...board.alarms.values()].some((a) => a.state === 'open');
  const ctx = board.audio;
  soundButton();
  document.body.dataset.sound = open && ctx?.state === 'running' ? 'beeping' : 'quiet';
  if (!open || ctx?.state !== 'running') return;
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.type = 'square';
  osc.frequency.value = 880;
  gain.gain.value = 0.3;
  osc.connect(gain).connect(ctx.destination);
  osc.start();
  osc.frequency.setValueAtTime(660, ctx.currentTime + 0.25);
  osc.stop(ctx.currentTime + 0.5);
}

// --- the map -----------------------------------------------------------------------------

async function setUpMap() {
  if (board.map) return;
  const config = await api('GET', '/web/config.json');
  board.map = L.map('map', { zoomControl: true }).setView(config.center, 14);
  if (config.tile_url) {
    const osm = config.tile_url.includes('openstreetmap.org');
    L.tileLayer(config.tile_url, {
      maxZoom: 19,
      attribution: osm ? '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>' : '',
    }).addTo(board.map);
  }
  board.layers = L.layerGroup().addTo(board.map);
  await Promise.all([loadPlaces(), loadReported()]);
  const places = [...board.places.values()];
  if (places.length) board.map.fitBounds(places.map((p) => [p.center.lat, p.center.lon]), { padding: [30, 30] });
  renderMap();
  renderPeople();
}

/// Every place of my teams, with the warnings that apply now (read again after a report).
async function loadPlaces() {
  const lists = await Promise.all(board.me.teams.map((team) => api('GET', `/api/v1/teams/${team}/places`).catch(() => [])));
  board.places = new Map(lists.flat().sort((a, b) => a.name.localeCompare(b.name)).map((p) => [p.id, p]));
  renderPlaces();
}

/// The visits and places reported on since yesterday, so a reloaded board still marks them.
async function loadReported() {
  const day = (ms) => new Date(ms).toISOString().slice(0, 10);
  const range = `from=${day(Date.now() - 864e5)}&to=${day(Date.now())}`;
  const lists = await Promise.all(board.me.teams.map((team) => api('GET', `/api/v1/teams/${team}/incidents?${range}`).catch(() => [])));
  for (const i of lists.flat()) board.reported.add(i.visit_id ?? i.place_id);
}

function renderPlaces() {
  $('#place-list').replaceChildren(...[...board.places.values()].map((p) => h('li', { dataset: { place: p.id } },
    h('strong', {}, p.name), h('span', { class: 'muted' }, ` · ${t(p.kind)}`),
    reportControl({ place: p.id, about: p.name }),
    ...p.warnings.map((w) => h('div', { class: 'warning' }, `⚠ ${t(w.kind)}: ${w.text}`)))));
}

// --- incident reports (issue 4.5) ---------------------------------------------------------

/// A "report" button for a visit (with its place) or a place, and whether one was reported.
function reportControl({ visit, place, about }) {
  const done = board.reported.has(visit ?? place);
  return h('span', { class: 'report' },
    done ? h('span', { class: 'reported', dataset: { reported: visit ?? place } }, `✓ ${t('reported')} `) : null,
    h('button', {
      type: 'button', class: 'report-incident', 'aria-label': `${t('report_incident')}: ${about}`,
      onclick: () => openIncident({ visit, place, about }),
    }, t('report')));
}

function wireIncidentDialog() {
  const dialog = $('#incident-dialog');
  $('#incident-warn').addEventListener('change', (e) => { $('#incident-warning').hidden = !e.target.checked; });
  $('#incident-cancel').addEventListener('click', () => dialog.close());
  $('#incident-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const button = e.submitter ?? $('#incident-form button[type=submit]');
    button.disabled = true;
    $('#incident-error').textContent = '';
    try {
      await reportIncident(dialog.about);
      dialog.close();
    } catch (err) {
      $('#incident-error').textContent = err.message;
    } finally {
      button.disabled = false;
    }
  });
}

function openIncident(about) {
  const dialog = $('#incident-dialog');
  dialog.about = about;
  $('#incident-about').textContent = about.about;
  $('#incident-place').replaceChildren(...[...board.places.values()].map((p) =>
    h('option', { value: p.id, selected: p.id === about.place }, p.name)));
  board.incidentKind = kindPicker($('#incident-kinds'));
  $('#incident-text').value = '';
  $('#incident-warn').checked = false;
  $('#incident-warning').hidden = true;
  $('#incident-warning-text').value = '';
  $('#incident-warning-until').value = monthsAhead(WARNING_MONTHS);
  $('#incident-error').textContent = '';
  dialog.showModal();
  $('#incident-text').focus();
}

/// Sends the report; the row shows it, and the place's new warning shows everywhere.
async function reportIncident({ visit }) {
  const warn = $('#incident-warn').checked;
  const body = incidentBody({
    kind: board.incidentKind(),
    description: $('#incident-text').value,
    visit_id: visit,
    place_id: $('#incident-place').value,
    warning: warn ? { text: $('#incident-warning-text').value, until: $('#incident-warning-until').value } : null,
  });
  const incident = await api('POST', '/api/v1/incidents', body);
  board.reported.add(incident.visit_id ?? incident.place_id);
  board.reported.add(incident.place_id);
  if (warn) await loadPlaces();
  else renderPlaces();
  // Only the cards' report marks change: a note being typed on a card survives.
  for (const card of document.querySelectorAll('[data-alarm]')) {
    const a = board.alarms.get(card.dataset.alarm);
    if (a) card.querySelector('.incident').replaceWith(alarmIncident(a, card.getAttribute('aria-label')));
  }
  renderPeople();
  renderMap();
}

const COLORS = { alarm: '#b00000', overdue: '#c77800', in_visit: '#003d99', free: '#555' };

function renderMap() {
  if (!board.layers) return;
  board.layers.clearLayers();
  for (const p of board.places.values()) {
    const warned = p.warnings.length > 0;
    L.circleMarker([p.center.lat, p.center.lon], {
      radius: 7, color: '#000', weight: 2, fillColor: warned ? '#ffd500' : '#fff', fillOpacity: 1,
    }).bindTooltip(text([p.name, ...p.warnings.map((w) => `⚠ ${w.text}`)].join(' · '))).addTo(board.layers);
  }
  // Workers in a visit are shown at its place; an alarm at its last known position.
  for (const id of people()) {
    const v = visitOf(id);
    const place = v ? board.places.get(v.place) : null;
    const alarm = alarmOf(id);
    const at = alarm?.position ? [alarm.position.lat, alarm.position.lon] : place ? [place.center.lat, place.center.lon] : null;
    if (!at) continue;
    const state = stateOf(id);
    L.circleMarker(at, { radius: state === 'alarm' ? 14 : 10, color: '#000', weight: 2, fillColor: COLORS[state], fillOpacity: 0.9 })
      .bindTooltip(text(nameOf(id)), { permanent: true, direction: 'right', className: 'worker' })
      .addTo(board.layers);
  }
}

/// Leaflet reads a string tooltip as HTML: names and warnings go in as text.
function text(s) {
  return h('span', {}, s);
}
