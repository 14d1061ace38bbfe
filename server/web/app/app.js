// The worker's app: sign in, shift, start a visit in a few taps, check in and out (with PIN;
// the duress PIN looks exactly the same), extend, hold-to-SOS, the observer's "we leave now",
// an offline queue, push notifications. Positions are read only during a visit.

import { api, currentPerson, loginForm, signOut, Offline, Problem } from '/shared/api.js';
import { t, setLang, lang, translate, countdown, addTexts } from '/shared/i18n.js';
import { h, $, show } from '/shared/dom.js';
import { enqueue, flush, pending } from './queue.js';
import { offerApproval, resetApproval } from './approval.js';
import { kindPicker, incidentBody } from '/shared/incident.js';

const KINDS = ['home_visit_announced', 'home_visit_unannounced', 'street_contact', 'park', 'drop_in', 'shelter', 'other'];
/// The visit kind a place suggests.
const KIND_OF_PLACE = { home: 'home_visit_announced', park: 'park', drop_in: 'drop_in', shelter: 'shelter', street: 'street_contact', other: 'other' };
const DURATIONS = [15, 30, 45, 60, 90];
const EXTEND_MINUTES = 15;
/// How long SOS is held before it fires.
const SOS_HOLD_MS = 3000;
/// The check-in prompt shows this long before a check-in is due.
const PROMPT_BEFORE_MS = 5 * 60 * 1000;
/// The battery is reported when it moved this many points, or the charging changed…
const BATTERY_STEP = 5;
/// …and at least this often while on shift, so the board can tell an old figure.
const BATTERY_EVERY_MS = 5 * 60 * 1000;

addTexts({
  da: { push_unavailable: 'Notifikationer kan ikke slås til på telefonen lige nu. Appen minder dig, mens den er åben.' },
  sv: { push_unavailable: 'Aviseringar kan inte slås på i telefonen just nu. Appen påminner dig medan den är öppen.' },
  en: { push_unavailable: 'Notifications cannot be turned on on this phone right now. The app reminds you while it is open.' },
});

const state = {
  me: null,
  visit: null,
  places: [],
  colleagues: [],
  questions: [],
  choice: { place: null, minutes: 30, answers: {} },
  position: null,
  watch: null,
  myAlarms: new Set(),
  prompted: null,
};

// --- start -------------------------------------------------------------------------------

addEventListener('DOMContentLoaded', async () => {
  translate(document);
  $('#lang').value = lang();
  $('#lang').addEventListener('change', (e) => { setLang(e.target.value); render(); });
  loginForm($('#login'), (person) => { state.me = person; remember('makker.me', person); enter(); });
  wire();
  if ('serviceWorker' in navigator) navigator.serviceWorker.register('/app/sw.js', { scope: '/app/' }).catch(() => {});
  addEventListener('online', replay);
  addEventListener('offline', () => network(false));
  setInterval(tick, 1000);
  setInterval(poll, 4000);
  try {
    state.me = await currentPerson();
    remember('makker.me', state.me);
  } catch (e) {
    if (!(e instanceof Offline)) throw e;
    // Opened without a network: the app goes on with what it knew.
    state.me = recall('makker.me');
    state.visit = recall('makker.visit');
  }
  state.me ? enter() : show('login');
  replay();
});

/// What the app must know to work when it is opened offline.
function remember(key, value) {
  if (value) localStorage.setItem(key, JSON.stringify(value));
  else localStorage.removeItem(key);
}

function recall(key) {
  return JSON.parse(localStorage.getItem(key) || 'null');
}

function keepVisit(visit) {
  state.visit = visit;
  remember('makker.visit', visit);
}

async function enter() {
  $('#lang').value = lang();
  for (const el of document.querySelectorAll('.who')) el.textContent = state.me.display_name;
  await replay();
  await refresh();
  offerPush();
  watchBattery();
}

/// Reads my visit from the server and shows the right screen.
async function refresh() {
  try {
    keepVisit((await api('GET', '/api/v1/visits/active')).visit);
  } catch (e) {
    if (e instanceof Offline) { network(false); render(); return; }
    if (e instanceof Problem && e.status === 401) { show('login'); return; }
    throw e;
  }
  if (state.visit) localStorage.setItem('makker.shift', '1');
  render();
}

function onShift() {
  return localStorage.getItem('makker.shift') === '1';
}

function render() {
  if (!state.me) return show('login');
  if (state.visit) return showVisit();
  if (['start', 'done', 'report'].includes(document.body.dataset.view)) return;
  show(onShift() ? 'home' : 'off');
}

// --- buttons -----------------------------------------------------------------------------

function wire() {
  $('#sign-out').addEventListener('click', async () => {
    await signOut().catch(() => {});
    for (const key of ['makker.shift', 'makker.me', 'makker.visit', 'makker.visit-place']) localStorage.removeItem(key);
    state.me = null;
    show('login');
  });
  $('#start-shift').addEventListener('click', () => act(async () => {
    try {
      await api('POST', '/api/v1/shift/start', {});
    } catch (e) {
      if (!(e instanceof Problem && e.reason === 'already-on-shift')) throw e;
    }
    localStorage.setItem('makker.shift', '1');
    show('home');
    watchBattery();
  }));
  $('#end-shift').addEventListener('click', () => act(async () => {
    try {
      await api('POST', '/api/v1/shift/end');
    } catch (e) {
      if (!(e instanceof Problem && e.reason === 'not-on-shift')) throw e;
    }
    localStorage.removeItem('makker.shift');
    show('off');
    unwatchBattery();
  }));
  $('#new-visit').addEventListener('click', () => act(openStart));
  $('#cancel-start').addEventListener('click', () => { stopPosition(); show('home'); });
  $('#visit-form').addEventListener('submit', (e) => { e.preventDefault(); act(startVisit, $('#start-error')); });
  $('#partner').addEventListener('change', formRows);
  $('#kind').addEventListener('change', formRows);
  $('#check-out').addEventListener('click', askPin);
  $('#pin-cancel').addEventListener('click', () => $('#pin-dialog').close());
  $('#pin-form').addEventListener('submit', (e) => { e.preventDefault(); act(checkOut, $('#pin-error')); });
  $('#check-in').addEventListener('click', () => act(checkIn));
  $('#extend').addEventListener('click', () => act(extend));
  $('#leave-now').addEventListener('click', () => act(withdraw));
  $('#done-ok').addEventListener('click', () => { $('#report').hidden = true; show(onShift() ? 'home' : 'off'); });
  $('#report').addEventListener('click', openReport);
  $('#report-cancel').addEventListener('click', () => show('done'));
  $('#report-form').addEventListener('submit', (e) => { e.preventDefault(); act(sendReport, $('#report-error')); });
  holdToSos($('#sos'));
}

/// Runs a button's work; a refusal is shown where `errorEl` says (or as a notice).
async function act(work, errorEl) {
  if (errorEl) errorEl.textContent = '';
  try {
    await work();
  } catch (e) {
    const text = e instanceof Problem ? e.message : e instanceof Offline ? t('offline') : t('error');
    if (errorEl) errorEl.textContent = text;
    else notice(text);
    if (e instanceof Offline) network(false);
  }
}

function notice(text) {
  const el = $('#notice');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => { el.hidden = true; }, 6000);
}

// --- starting a visit --------------------------------------------------------------------

async function openStart() {
  watchPosition();
  const [colleagues, questions] = await Promise.all([
    api('GET', '/api/v1/colleagues'),
    api('GET', '/api/v1/assessment/questions'),
  ]);
  state.colleagues = colleagues;
  state.questions = questions;
  state.choice = { place: null, minutes: 30, answers: Object.fromEntries(questions.map((q) => [q.id, false])) };
  $('#start-error').textContent = '';
  resetApproval();
  $('#reason').value = '';
  fillSelect($('#kind'), KINDS.map((k) => [k, t(k)]));
  fillSelect($('#partner'), [['', t('alone')], ...colleagues.map((c) => [c.person_id, c.display_name])]);
  fillSelect($('#tell'), colleagues.map((c) => [c.person_id, c.display_name]));
  renderQuestions();
  renderDurations();
  show('start');
  formRows();
  await loadPlaces();
}

async function loadPlaces() {
  const at = await positionNow(4000);
  const config = await api('GET', '/web/config.json');
  $('#gps-note').hidden = Boolean(at);
  const [lat, lon] = at ? [at.lat, at.lon] : config.center;
  state.places = await api('GET', `/api/v1/places/near?lat=${lat}&lon=${lon}&radius_m=${at ? 1000 : 5000}`);
  choosePlace(state.places[0] ?? null);
}

function choosePlace(place) {
  state.choice.place = place;
  const list = $('#places');
  list.className = 'choices places';
  list.replaceChildren(...state.places.slice(0, 6).map((p) => h('button', {
    type: 'button', role: 'radio', 'aria-checked': String(p === place),
    onclick: () => choosePlace(p),
  }, p.name, h('span', { class: 'muted' }, ` · ${Math.round(p.distance_m)} m`))));
  if (place) $('#kind').value = KIND_OF_PLACE[place.kind] ?? 'other';
  $('#place-warnings').replaceChildren(...warnings(place?.warnings ?? []));
  formRows();
}

function warnings(list) {
  return list.map((w) => h('p', { class: 'warning', role: 'note' }, `⚠ ${t(w.kind)}: ${w.text}`));
}

function renderQuestions() {
  $('#questions').replaceChildren(...state.questions.map((q) => {
    const answer = (yes) => h('button', {
      type: 'button', 'aria-pressed': String(state.choice.answers[q.id] === yes),
      onclick: () => { state.choice.answers[q.id] = yes; renderQuestions(); },
    }, t(yes ? 'yes' : 'no'));
    return h('div', { class: 'question', role: 'group', 'aria-label': q.text },
      h('span', {}, q.text), h('span', { class: 'yn' }, answer(true), answer(false)));
  }));
}

function renderDurations() {
  $('#durations').replaceChildren(...DURATIONS.map((m) => h('button', {
    type: 'button', role: 'radio', 'aria-checked': String(state.choice.minutes === m),
    onclick: () => { state.choice.minutes = m; renderDurations(); },
  }, `${m} ${t('minutes')}`)));
}

/// Shows the rows the choice needs: my role with a partner; whom to tell alone in a home.
function formRows() {
  const alone = !$('#partner').value;
  $('#role-row').hidden = alone;
  $('#tell-row').hidden = !(alone && $('#kind').value.startsWith('home_visit') && state.colleagues.length);
}

function fillSelect(select, options) {
  select.replaceChildren(...options.map(([value, text]) => h('option', { value }, text)));
}

async function startVisit() {
  const place = state.choice.place;
  if (!place) throw new Error(t('place'));
  const partner = $('#partner').value;
  const role = partner ? $('#role').value : 'talker';
  const body = {
    kind: $('#kind').value,
    place_id: place.id,
    planned_minutes: state.choice.minutes,
    answers: state.choice.answers,
    role,
    partners: partner ? [{ person_id: partner, role: role === 'talker' ? 'observer' : 'talker' }] : [],
    position: state.position,
  };
  if (!$('#tell-row').hidden) body.tell_colleague_id = $('#tell').value;
  if ($('#reason').value.trim()) body.lone_reason = $('#reason').value.trim();
  try {
    keepVisit(await api('POST', '/api/v1/visits', body, crypto.randomUUID()));
  } catch (e) {
    if (e instanceof Problem && e.reason === 'lone-reason-required') $('#reason-row').hidden = false;
    if (e instanceof Problem && e.reason === 'lone-approval-required') {
      offerApproval({ place_id: body.place_id, kind: body.kind, answers: body.answers }, () => act(startVisit, $('#start-error')));
    }
    throw e;
  }
  state.visitPlace = place;
  localStorage.setItem('makker.visit-place', JSON.stringify(place));
  showVisit();
}

// --- during a visit ----------------------------------------------------------------------

function myPart() {
  return state.visit?.participants.find((p) => p.person_id === state.me?.id && !p.left_at);
}

function showVisit() {
  const v = state.visit;
  const place = state.visitPlace ?? JSON.parse(localStorage.getItem('makker.visit-place') || 'null');
  const here = place?.id === v.place_id ? place : null;
  $('#visit-place').textContent = here?.name ?? t('place');
  $('#visit-kind').textContent = `${t(v.kind)} · ${t('risk')}: ${t(v.risk_level)}`;
  $('#visit-warnings').replaceChildren(...warnings(here?.warnings ?? []));
  $('#leave-now').hidden = myPart()?.role !== 'observer';
  watchPosition();
  show('visit');
  tick();
}

/// Every second: the countdown and the check-in prompt.
function tick() {
  const v = state.visit;
  if (!v || document.body.dataset.view !== 'visit') return;
  const left = (Date.parse(v.planned_end) - Date.now()) / 1000;
  const el = $('#time-left');
  el.textContent = countdown(left);
  el.classList.toggle('over', left < 0);
  const due = Date.parse(v.check_in_due);
  const prompt = Date.now() >= due - PROMPT_BEFORE_MS;
  $('#check-in-prompt').hidden = !prompt;
  if (prompt && state.prompted !== v.check_in_due) {
    state.prompted = v.check_in_due;
    remind(t('check_in_due'));
  }
}

function askPin() {
  $('#pin').value = '';
  $('#pin-error').textContent = '';
  $('#pin-dialog').showModal();
  $('#pin').focus();
}

/// A queued signal for my visit: sent now when the network allows, else kept and replayed.
async function signal(action, extra = {}) {
  const entry = await enqueue(`/api/v1/visits/${state.visit.id}/${action}`, { ...extra, position: state.position });
  const sent = await replay();
  const answer = sent.find((o) => o.entry.key === entry.key);
  if (answer?.problem) throw answer.problem;
  return answer?.result ?? null;
}

async function checkOut() {
  const pin = $('#pin').value;
  // A wrong PIN must be answered while the dialog is open: with no network, trust the queue.
  const result = await signal('check-out', pin ? { pin } : {});
  $('#pin-dialog').close();
  finishVisit(t('checked_out') + (result ? '' : ` (${t('sent_later')})`));
}

function finishVisit(text) {
  keepVisit(null);
  stopPosition();
  $('#done-text').textContent = text;
  show('done');
}

async function checkIn() {
  const v = await signal('check-in');
  if (v) keepVisit(v);
  notice(t('check_in_done') + (v ? '' : ` (${t('sent_later')})`));
  tick();
}

async function extend() {
  const v = await signal('extend', { minutes: EXTEND_MINUTES });
  if (v) keepVisit(v);
  else keepVisit({ ...state.visit, planned_end: new Date(Date.parse(state.visit.planned_end) + EXTEND_MINUTES * 60000).toISOString() });
  notice(`${t('extend')} +${EXTEND_MINUTES} ${t('minutes')}`);
  tick();
}

/// Rule 4: the observer decides that the pair leaves; recorded with time and place. A quick
/// incident report is offered afterwards, dated to the withdrawal.
async function withdraw() {
  const visit = state.visit;
  await signal('withdraw');
  state.left = { visit_id: visit.id, occurred_at: new Date().toISOString() };
  finishVisit(t('withdrawn'));
  $('#report').hidden = false;
}

function openReport() {
  state.incidentKind = kindPicker($('#incident-kinds'));
  $('#incident-text').value = '';
  $('#report-error').textContent = '';
  show('report');
}

async function sendReport() {
  const body = incidentBody({ kind: state.incidentKind(), description: $('#incident-text').value, ...state.left });
  const entry = await enqueue('/api/v1/incidents', body, null);
  const answer = (await replay()).find((o) => o.entry.key === entry.key);
  if (answer?.problem) throw answer.problem;
  $('#report').hidden = true;
  notice(t('report_sent') + (answer ? '' : ` (${t('sent_later')})`));
  show(onShift() ? 'home' : 'off');
}

function holdToSos(button) {
  let timer = null;
  const start = (e) => {
    e.preventDefault();
    if (timer) return;
    button.classList.add('holding');
    navigator.vibrate?.(200);
    timer = setTimeout(() => { timer = null; button.classList.remove('holding'); act(sos); }, SOS_HOLD_MS);
  };
  const stop = () => { clearTimeout(timer); timer = null; button.classList.remove('holding'); };
  button.addEventListener('pointerdown', start);
  for (const ev of ['pointerup', 'pointerleave', 'pointercancel']) button.addEventListener(ev, stop);
  button.addEventListener('keydown', (e) => { if ((e.key === ' ' || e.key === 'Enter') && !e.repeat) start(e); });
  button.addEventListener('keyup', (e) => { if (e.key === ' ' || e.key === 'Enter') stop(); });
  button.addEventListener('contextmenu', (e) => e.preventDefault());
}

async function sos() {
  navigator.vibrate?.([300, 100, 300, 100, 600]);
  await enqueue('/api/v1/sos', { position: state.position });
  await replay();
  notice(t('sos_sent'));
}

// --- the network, the queue and the alarms about me --------------------------------------

function network(up) {
  document.body.dataset.online = String(up);
  $('#offline').hidden = up;
}

/// Sends the queue; shows what still waits (and the offline banner while anything does).
async function replay() {
  const sent = await flush();
  // A refusal of something queued earlier is told, or the worker would believe it done.
  for (const { problem } of sent) {
    if (!problem) continue;
    notice(`${t('error')}: ${problem.message}`);
    document.body.dataset.refused = problem.type || 'error';
  }
  const left = (await pending()).length;
  $('#queued').textContent = left ? `(${left} ${t('queued')})` : '';
  document.body.dataset.queued = String(left);
  network(left === 0 && navigator.onLine);
  return sent;
}

/// Every few seconds: replay the queue, and learn of alarms about me and their end.
async function poll() {
  if (!state.me) return;
  await replay();
  let alarms;
  try {
    alarms = await api('GET', '/api/v1/alarms');
    network(true);
  } catch (e) {
    if (e instanceof Offline) network(false);
    return;
  }
  const mine = new Set(alarms.filter((a) => a.person_id === state.me.id).map((a) => a.id));
  const over = [...state.myAlarms].some((id) => !mine.has(id));
  state.myAlarms = mine;
  $('#alarm-banner').hidden = mine.size === 0;
  if (over && mine.size === 0) {
    $('#stand-down').hidden = false;
    remind(t('stand_down'));
  }
  if (mine.size) $('#stand-down').hidden = true;
  if (state.visit) {
    const v = await api('GET', '/api/v1/visits/active').catch(() => null);
    if (v && v.visit) { keepVisit(v.visit); tick(); }
  }
}

// --- position, only during a visit -------------------------------------------------------

function watchPosition() {
  if (state.watch !== null || !navigator.geolocation) return;
  state.watch = navigator.geolocation.watchPosition(
    (p) => { state.position = { lat: p.coords.latitude, lon: p.coords.longitude }; },
    () => {}, { enableHighAccuracy: true, maximumAge: 30000 });
}

function stopPosition() {
  if (state.watch !== null) navigator.geolocation.clearWatch(state.watch);
  state.watch = null;
  state.position = null;
}

function positionNow(timeout) {
  if (state.position) return Promise.resolve(state.position);
  return new Promise((resolve) => {
    if (!navigator.geolocation) return resolve(null);
    navigator.geolocation.getCurrentPosition(
      (p) => { state.position = { lat: p.coords.latitude, lon: p.coords.longitude }; resolve(state.position); },
      () => resolve(null), { enableHighAccuracy: true, timeout, maximumAge: 30000 });
  });
}

// --- the phone's battery, for the board ----------------------------------------------------

/// Best effort and only while on shift: sent directly, never queued (only the latest level
/// matters), and a failed report is dropped.
const battery = { manager: null, sent: null, timer: null };

async function watchBattery() {
  if (!onShift() || !navigator.getBattery) return;
  if (!battery.manager) {
    const manager = await navigator.getBattery().catch(() => null);
    if (!manager || battery.manager) return;
    battery.manager = manager;
    for (const ev of ['levelchange', 'chargingchange']) manager.addEventListener(ev, () => reportBattery(false));
  }
  clearInterval(battery.timer);
  battery.timer = setInterval(() => reportBattery(true), BATTERY_EVERY_MS);
  battery.sent = null;
  reportBattery(true);
}

function unwatchBattery() {
  clearInterval(battery.timer);
  battery.timer = null;
  battery.sent = null;
}

async function reportBattery(always) {
  const b = battery.manager;
  if (!b || !onShift() || !state.me) return;
  const now = { battery_pct: Math.round(b.level * 100), charging: Boolean(b.charging) };
  const last = battery.sent;
  const moved = !last || Math.abs(now.battery_pct - last.battery_pct) >= BATTERY_STEP || now.charging !== last.charging;
  if (!always && !moved) return;
  battery.sent = now;
  try {
    await api('POST', '/api/v1/shift/status', now);
  } catch {
    // Dropped: the next change or the keep-alive tells the board.
    if (battery.sent === now) battery.sent = last;
  }
}

// --- notifications -----------------------------------------------------------------------

/// A notification that stays until touched (the service worker shows it).
async function remind(body) {
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  const reg = await navigator.serviceWorker?.ready;
  reg?.showNotification('Makker', { body, requireInteraction: true, tag: 'makker-app', lang: lang() });
}

async function offerPush() {
  const button = $('#notify');
  if (!('PushManager' in window) || !navigator.serviceWorker) return;
  const { public_key: key } = await api('GET', '/api/v1/push/key').catch(() => ({}));
  if (!key) return;
  const reg = await navigator.serviceWorker.ready;
  const existing = await reg.pushManager.getSubscription();
  if (existing && Notification.permission === 'granted') return send(existing);
  button.hidden = false;
  button.onclick = () => act(async () => {
    if ((await Notification.requestPermission()) !== 'granted') return;
    let sub;
    try {
      sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    } catch {
      // No push service reachable (or none in this browser): say so, the button stays to retry.
      document.body.dataset.push = 'unavailable';
      notice(t('push_unavailable'));
      return;
    }
    await send(sub);
    document.body.dataset.push = 'subscribed';
    button.hidden = true;
    notice(t('notifications_ok'));
  });

  function send(sub) {
    const json = sub.toJSON();
    return api('POST', '/api/v1/push/subscriptions', { endpoint: json.endpoint, keys: json.keys });
  }
}
