// Makker's pages in real headless Chromium (Debian's /usr/bin/chromium, never a downloaded
// browser), driven by playwright-core. Started by server/app/tests/browser.rs with a running
// `makker serve` (the demo team: password "makker-demo", PIN 1234, duress PIN 9876):
//
//   node scenarios.mjs <scenario>    MAKKER_BASE_URL=http://localhost:PORT MAKKER_ARTIFACTS=DIR
//
// A line "@@ <verb>" on stdout asks the Rust side to act (move a deadline, stop or start the
// server); its answer comes as one line on stdin. Screenshots go to MAKKER_ARTIFACTS.
// Exits non-zero on the first failed expectation.

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const BASE = process.env.MAKKER_BASE_URL;
const ARTIFACTS = process.env.MAKKER_ARTIFACTS;
const PASSWORD = 'makker-demo';
/// The demo's home "Hjem G-17 (Gellerup)": the phone stands at its door.
const AT_HOME = { latitude: 56.1592, longitude: 10.1405 };
/// The demo's park "Mølleparken", with a warning of threats against staff.
const IN_THE_PARK = { latitude: 56.1563, longitude: 10.2038 };
const WAIT = 15000;

// --- talking to the Rust side ----------------------------------------------------------------

const answers = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function ask(verb) {
  console.log(`@@ ${verb}`);
  const { value, done } = await answers.next();
  assert.ok(!done, `no answer to ${verb}`);
  assert.ok(value.startsWith('ok'), `${verb}: ${value}`);
  return value.slice(2).trim();
}

// --- browsers, pages, the API --------------------------------------------------------------

const browsers = [];

async function launch() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--autoplay-policy=no-user-gesture-required'],
  });
  browsers.push(browser);
  return browser;
}

async function phone(browser, geolocation = AT_HOME) {
  const context = await browser.newContext({
    baseURL: BASE, viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
    geolocation, permissions: ['geolocation'], locale: 'da-DK', timezoneId: 'Europe/Copenhagen',
  });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  watchErrors(page, 'phone');
  return { context, page };
}

async function desk(browser) {
  const context = await browser.newContext({
    baseURL: BASE, viewport: { width: 1400, height: 900 }, locale: 'da-DK', timezoneId: 'Europe/Copenhagen',
  });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  watchErrors(page, 'board');
  return { context, page };
}

/// A script error or a CSP violation on a page fails the scenario.
function watchErrors(page, who) {
  page.on('pageerror', (e) => { console.error(`${who}: ${e.stack || e}`); process.exitCode = 1; });
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|ERR_INTERNET_DISCONNECTED|ERR_CONNECTION_REFUSED/.test(m.text())) {
      console.error(`${who} console: ${m.text()}`);
      if (/Content Security Policy/.test(m.text())) process.exitCode = 1;
    }
  });
}

async function signIn(page, path, username) {
  await page.goto(path);
  await page.fill('#username', username);
  await page.fill('#password', PASSWORD);
  await page.click('#login button[type=submit]');
}

async function shot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/// A bearer token for a person, for what the scenario does outside a browser.
async function token(username) {
  const res = await fetch(`${BASE}/api/v1/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: PASSWORD, device_name: 'browser test' }),
  });
  assert.equal(res.status, 200, `login ${username}`);
  return (await res.json()).token;
}

async function call(tok, method, path, body) {
  const res = await fetch(`${BASE}${path}`, {
    method, headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = res.status === 204 ? null : await res.json();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

// --- the worker's steps ------------------------------------------------------------------

/// Signs in, starts the shift, and is ready to start a visit.
async function workerOnShift(page, username) {
  await signIn(page, '/app/', username);
  await page.click('#start-shift');
  await page.waitForSelector('#new-visit', { state: 'visible' });
}

/// Starts the suggested visit at the nearest place, alone; the time from opening the app.
async function startLoneVisit(page, { shotName } = {}) {
  const opened = Date.now();
  await page.goto('/app/');
  await page.click('#new-visit');
  await page.waitForSelector('#places [aria-checked=true]');
  if (shotName) await shot(page, shotName);
  await page.click('#go');
  await page.waitForSelector('[data-screen=visit]:not([hidden])');
  return Date.now() - opened;
}

async function checkOut(page, pin) {
  await page.click('#check-out');
  await page.fill('#pin', pin);
  await page.click('#pin-ok');
  await page.waitForSelector('[data-screen=done]:not([hidden])');
  return page.textContent('#done-text');
}

/// The usual cast: Sofie's board (unless `board` is false), Bo on shift as the colleague to
/// tell (rule 6), and Anna's phone on shift.
async function cast({ board = true, at = AT_HOME } = {}) {
  const browser = await launch();
  const desktop = board ? await desk(browser) : null;
  if (desktop) await boardReady(desktop.page);
  await call(await token('bo'), 'POST', '/api/v1/shift/start', {});
  const anna = await phone(browser, at);
  await workerOnShift(anna.page, 'anna');
  return { browser, board: desktop, anna };
}

async function boardReady(page) {
  await signIn(page, '/board/', 'sofie');
  await page.waitForSelector('body[data-live=connected]');
  await page.waitForSelector('body[data-last-event-id]');
}

/// The board's row of a person (by the name in its first cell: partners are named too).
const row = (page, name) => page.locator('#people tbody tr', { has: page.locator('td:first-child', { hasText: name }) });

// --- scenarios ---------------------------------------------------------------------------

const SCENARIOS = {
  /// Rule 5: alone in a home only where assessed safe, or with a supervisor's approval. Anna's
  /// lone start at medium risk is refused; she asks from the door; Sofie's board shows the ask
  /// with the place and the risk; one click approves; Anna's app starts the visit by itself.
  /// Then Sofie approves Bo from his row with the place picker, and Bo's plain start uses it.
  async 'lone-approval'() {
    const { browser, board, anna } = await cast();
    await anna.page.click('#new-visit');
    await anna.page.waitForSelector('#places [aria-checked=true]');
    // An unknown citizen: medium risk, where a lone home visit needs an approval.
    await anna.page.click('#questions [aria-label="Er borgeren ukendt for teamet?"] button:has-text("Ja")');
    await anna.page.click('#go');
    await anna.page.waitForSelector('#approval[data-state=offered]');
    assert.match(await anna.page.textContent('#start-error'), /kræver godkendelse fra vagthavende/);
    assert.equal(await anna.page.textContent('#ask-approval'), 'Bed vagthavende om godkendelse');
    await shot(anna.page, 'phone-approval-needed');
    await anna.page.click('#ask-approval');
    await anna.page.waitForSelector('#approval[data-state=open]');
    const asked = Date.now();

    const ask = board.page.locator('.ask-card');
    await ask.waitFor({ timeout: 5000 });
    console.log(`the board showed the ask after ${Date.now() - asked} ms`);
    const text = await ask.textContent();
    assert.match(text, /Anna Jensen beder om at gå alene/);
    assert.match(text, /Hjem G-17 \(Gellerup\).*Hjemmebesøg \(anmeldt\).*Risiko: middel/s);
    await shot(anna.page, 'phone-approval-waiting');
    await shot(board.page, 'board-approval-request');
    await ask.locator('button.approve').click();
    await ask.waitFor({ state: 'detached' });
    await board.page.waitForSelector('#approval-requests', { state: 'hidden' });

    // The app learns of the approval and starts the visit without another tap.
    await anna.page.waitForSelector('[data-screen=visit]:not([hidden])');
    console.log(`approved to a started visit: ${Date.now() - asked} ms from the ask`);
    assert.equal(await anna.page.textContent('#visit-place'), 'Hjem G-17 (Gellerup)');
    assert.match(await anna.page.textContent('#visit-kind'), /Risiko: middel/);
    await shot(anna.page, 'phone-approved-visit');
    await row(board.page, 'Anna Jensen').and(board.page.locator('[data-state=in_visit]')).waitFor();

    // From a person's row: a place picked from the team's places, homes included.
    await row(board.page, 'Bo Nielsen').locator('button.approve-lone').click();
    await board.page.waitForSelector('#approve-dialog[open]');
    await board.page.selectOption('#approve-place', { label: 'Hjem G-17 (Gellerup) · Hjem' });
    await shot(board.page, 'board-approve-from-row');
    await board.page.click('#approve-ok');
    await board.page.waitForSelector('#approve-done:has-text("Godkendt indtil")');
    const bo = await token('bo');
    const place = (await call(bo, 'GET', `/api/v1/places/near?lat=${AT_HOME.latitude}&lon=${AT_HOME.longitude}&radius_m=100`))[0];
    const questions = await call(bo, 'GET', '/api/v1/assessment/questions');
    const visit = await call(bo, 'POST', '/api/v1/visits', {
      kind: 'home_visit_announced', place_id: place.id, planned_minutes: 30,
      answers: Object.fromEntries(questions.map((q) => [q.id, q.id === 'unknown_citizen'])),
      tell_colleague_id: (await call(await token('anna'), 'GET', '/api/v1/me')).id,
    });
    assert.equal(visit.risk_level, 'medium', 'a lone start the approval was needed for');
    await browser.close();
  },

  /// Pushed reminders and alarms reach the app's service worker (delivered through the
  /// DevTools protocol: headless Chromium has no push service) and show as notifications
  /// that stay until touched; a subscription that cannot reach a push service is explained.
  async 'push-notifications'() {
    const browser = await launch();
    const anna = await phone(browser);
    await anna.context.grantPermissions(['notifications'], { origin: BASE });
    const cdp = await anna.context.newCDPSession(anna.page);
    const registrations = new Map();
    cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations: list }) => {
      for (const r of list) if (!r.isDeleted) registrations.set(r.scopeURL, r.registrationId);
    });
    await cdp.send('ServiceWorker.enable');
    await workerOnShift(anna.page, 'anna');
    await anna.page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
    const scope = new URL('/app/', BASE).href;
    for (let i = 0; !registrations.has(scope); i++) {
      assert.ok(i < 100, `the app's service worker registration: ${[...registrations.keys()]}`);
      await anna.page.waitForTimeout(100);
    }

    // The push button, and a browser whose push service cannot be reached: a hint, no error.
    await anna.page.click('#notify');
    await anna.page.waitForSelector('body[data-push=unavailable]');
    assert.match(await anna.page.textContent('#notice'), /Notifikationer kan ikke slås til/);
    assert.ok(await anna.page.isVisible('#notify'), 'the button stays to try again');
    await shot(anna.page, 'phone-push-unavailable');

    // PushPayload as server/notify sends it (kind, title, body, visit or alarm id, urgency).
    const visit = '0193a000-0000-7000-8000-000000000001';
    const pushes = [
      { kind: 'check_in_due', title: 'Tid til at tjekke ind', body: 'Hjem G-17 (Gellerup): tjek ind inden 14:20', visit_id: visit, urgency: 'normal' },
      { kind: 'visit_notice', title: 'Din makker er gået', body: 'Bo Nielsen har forladt besøget', visit_id: visit, urgency: 'normal' },
      { kind: 'alarm', title: 'ALARM: Anna Jensen', body: 'Manglende tjek ud – ring til Anna', alarm_id: '0193a000-0000-7000-8000-000000000002', urgency: 'high' },
    ];
    const origin = new URL(BASE).origin;
    // waitForFunction does not wait for an async predicate: look until the count is reached.
    const notifications = () => anna.page.evaluate(async () => {
      const list = await (await navigator.serviceWorker.ready).getNotifications();
      return list.map((x) => ({ title: x.title, body: x.body, requireInteraction: x.requireInteraction }));
    });
    let shown = [];
    // One push at a time, as a push service delivers them: each is shown before the next
    // arrives, so a later one replacing an earlier one shows as a count that does not grow.
    for (const [i, p] of pushes.entries()) {
      await cdp.send('ServiceWorker.deliverPushMessage', { origin, registrationId: registrations.get(scope), data: JSON.stringify(p) });
      for (const until = Date.now() + 10000; shown.length <= i && Date.now() < until;) {
        await anna.page.waitForTimeout(100);
        shown = await notifications();
      }
    }
    assert.equal(shown.length, pushes.length, `one notification per push, none replacing another: ${JSON.stringify(shown)}`);
    const byTitle = Object.fromEntries(shown.map((n) => [n.title, n]));
    for (const p of pushes) {
      const n = byTitle[p.title];
      assert.ok(n, `${p.kind} is shown: ${JSON.stringify(shown)}`);
      assert.equal(n.body, p.body);
      assert.equal(n.requireInteraction, p.kind !== 'visit_notice', `${p.kind}: stays until touched only when it asks for action`);
    }
    console.log(`notifications shown: ${shown.map((n) => `${n.title} (${n.requireInteraction ? 'stays' : 'goes'})`).join('; ')}`);
    await shot(anna.page, 'phone-push-delivered');
    // notificationclick is not tested: nothing in headless Chromium or the DevTools protocol
    // clicks a notification, and a synthetic event may not focus or open a window.
    await browser.close();
  },

  /// A worker on a phone starts a lone home visit; the board shows it; the check-out deadline
  /// runs out; the alarm sounds and flashes; the supervisor acknowledges and resolves; the
  /// worker's app shows the stand-down.
  async 'lone-visit-alarm'() {
    const { browser, board, anna } = await cast();
    const took = await startLoneVisit(anna.page, { shotName: 'phone-start-visit' });
    const started = Date.now();
    console.log(`opening the app to a started visit: ${took} ms`);
    assert.equal(await anna.page.textContent('#visit-place'), 'Hjem G-17 (Gellerup)');
    await shot(anna.page, 'phone-visit');

    const annaRow = row(board.page, 'Anna Jensen');
    await annaRow.and(board.page.locator('[data-state=in_visit]')).waitFor({ timeout: 5000 });
    console.log(`the board showed the visit after ${Date.now() - started} ms`);
    assert.match(await annaRow.textContent(), /Hjemmebesøg \(anmeldt\)/);
    assert.match(await annaRow.textContent(), /Hjem G-17/);
    await shot(board.page, 'board-visit');

    await ask('overdue');
    const card = board.page.locator('.alarm-card[data-state=open][data-kind=missed_check_out]');
    await card.waitFor();
    await board.page.waitForSelector('body.alarming[data-sound=beeping]');
    assert.equal(await annaRow.getAttribute('data-state'), 'alarm');
    // The escalation trail: at least the first message and what became of it.
    await card.locator('.trail li').first().waitFor();
    await shot(board.page, 'board-alarm');
    await anna.page.waitForSelector('#alarm-banner:not([hidden])');
    await shot(anna.page, 'phone-alarm');

    await card.locator('button.ack').click();
    const taken = board.page.locator('.alarm-card[data-state=acknowledged]');
    await taken.waitFor();
    assert.match(await taken.textContent(), /Sofie Holm/);
    await taken.locator('select').selectOption('worker_safe');
    await taken.locator('input').fill('Ringede til Anna, alt i orden');
    await shot(board.page, 'board-acknowledged');
    await taken.locator('button.resolve').click();
    await board.page.locator('.alarm-card').waitFor({ state: 'detached' });
    await board.page.waitForSelector('body:not(.alarming)');

    await anna.page.waitForSelector('#stand-down:not([hidden])');
    assert.match(await anna.page.textContent('#stand-down'), /Afblæst/);
    await shot(anna.page, 'phone-stand-down');
    // Swedish and English on the worker's own choice.
    await anna.page.selectOption('#lang', 'sv');
    assert.equal(await anna.page.textContent('#check-out'), 'Checka ut');
    await anna.page.selectOption('#lang', 'en');
    assert.equal(await anna.page.textContent('#check-out'), 'Check out');
    await browser.close();
  },

  /// Rule 4: the observer of a pair taps "we leave now"; the withdrawal is recorded with its
  /// time, the visit ends for both, and a quick incident report follows.
  async 'observer-withdraws'() {
    const { browser, board, anna } = await cast({ at: IN_THE_PARK });
    await anna.page.click('#new-visit');
    await anna.page.waitForSelector('#places [aria-checked=true]');
    // The quick risk assessment shows the place's warnings.
    assert.match(await anna.page.textContent('#places [aria-checked=true]'), /Mølleparken/);
    assert.match(await anna.page.textContent('#place-warnings'), /Trusler mod personale/);
    await anna.page.selectOption('#partner', { label: 'Bo Nielsen' });
    await anna.page.selectOption('#role', 'observer');
    await anna.page.click('#go');
    await anna.page.waitForSelector('#leave-now:not([hidden])');
    await row(board.page, 'Anna Jensen').and(board.page.locator('[data-state=in_visit]')).waitFor();
    const annaRow = await row(board.page, 'Anna Jensen').textContent();
    assert.match(annaRow, /Bo Nielsen/, 'the partner shows');
    assert.match(annaRow, /Park.*Mølleparken.*Trusler mod personale/s, 'kind, place and its warning show');
    await shot(anna.page, 'phone-observer');
    await shot(board.page, 'board-pair-with-warning');

    const left = Date.now();
    await anna.page.click('#leave-now');
    await anna.page.waitForSelector('[data-screen=done]:not([hidden])');
    assert.match(await anna.page.textContent('#done-text'), /Tilbagetrækning registreret/);
    await row(board.page, 'Anna Jensen').and(board.page.locator('[data-state=free]')).waitFor();
    await row(board.page, 'Bo Nielsen').and(board.page.locator('[data-state=free]')).waitFor();

    await anna.page.click('#report');
    await anna.page.click('#incident-kinds button:has-text("Trusler")');
    await anna.page.fill('#incident-text', 'Gruppen blev urolig, en truede med at slå');
    await shot(anna.page, 'phone-incident-report');
    await anna.page.click('#report-form button[type=submit]');
    await anna.page.waitForSelector('#notice:has-text("rapporteret")');

    const me = await call(await token('sofie'), 'GET', '/api/v1/me');
    const incidents = await call(await token('sofie'), 'GET', `/api/v1/teams/${me.teams[0]}/incidents`);
    const report = incidents.find((i) => i.description.startsWith('Gruppen blev urolig'));
    assert.ok(report, 'the report reached the team');
    assert.equal(report.kind, 'threat');
    assert.ok(report.visit_id, 'tied to the visit');
    assert.ok(Math.abs(Date.parse(report.occurred_at) - left) < 3000, `dated to the withdrawal: ${report.occurred_at}`);
    const visits = (await call(await token('anna'), 'GET', '/api/v1/me/export')).visits;
    const events = visits.at(-1).my_events.map((e) => e.effect.type);
    assert.ok(events.includes('withdrawn'), `the withdrawal is recorded: ${events}`);
    await browser.close();
  },

  /// Offline, the worker checks in and then out; the app is closed and opened again; when
  /// the network returns the queue replays in order, and the server keeps the phone's times.
  async 'offline-queue'() {
    const { browser, anna } = await cast({ board: false });
    await startLoneVisit(anna.page);
    // The service worker holds the app's files before the network goes.
    await anna.page.evaluate(() => navigator.serviceWorker.ready.then(() => true));

    await anna.context.setOffline(true);
    const checkedIn = Date.now();
    await anna.page.click('#check-in');
    await anna.page.waitForSelector('#offline:not([hidden])');
    assert.match(await anna.page.textContent('#offline'), /OUT <pin>/);
    await anna.page.waitForTimeout(1500);
    const checkedOut = Date.now();
    const text = await checkOut(anna.page, '1234');
    assert.match(text, /tjekket ud/);
    await shot(anna.page, 'phone-offline');

    // Closed and opened again, still offline: the queue is still there.
    await anna.page.close();
    const again = await anna.context.newPage();
    watchErrors(again, 'phone');
    await again.goto('/app/');
    await again.waitForSelector('body[data-queued="2"]');
    await again.waitForTimeout(2500);
    const back = Date.now();
    await anna.context.setOffline(false);
    await again.waitForSelector('body[data-queued="0"]');
    await again.waitForSelector('#offline', { state: 'hidden' });

    assert.equal(await again.getAttribute('body', 'data-refused'), null, `refused: ${await again.textContent('#notice')}`);
    const tok = await token('anna');
    const exported = await call(tok, 'GET', '/api/v1/me/export');
    const visit = exported.visits.at(-1);
    assert.equal(visit.visit.state, 'ended');
    const events = visit.my_events.filter((e) => ['checked_in', 'checked_out'].includes(e.effect.type));
    assert.deepEqual(events.map((e) => e.effect.type), ['checked_in', 'checked_out'], 'replayed in order');
    for (const [event, at] of [[events[0], checkedIn], [events[1], checkedOut]]) {
      const occurred = Date.parse(event.occurred_at);
      assert.ok(event.client_time, 'the phone time is kept');
      assert.ok(Math.abs(occurred - at) < 1500, `occurred at the phone's time: ${event.occurred_at} vs ${new Date(at).toISOString()}`);
      assert.ok(Date.parse(event.received_at) >= back - 1000, `received after the network returned: ${event.received_at}`);
    }
    console.log(`replayed ${events.length} events, queued ${back - checkedIn} ms before the network returned`);
    await browser.close();
  },

  /// The duress PIN checks out like the real one on the phone; the board gets a duress alarm.
  async duress() {
    const { browser, board, anna } = await cast();
    await startLoneVisit(anna.page);
    const text = await checkOut(anna.page, '9876');
    assert.match(text, /Du er tjekket ud/);
    await shot(anna.page, 'phone-duress-check-out');

    const card = board.page.locator('.alarm-card[data-state=open][data-kind=duress]');
    await card.waitFor();
    assert.match(await card.textContent(), /Tvangskode – Anna Jensen/);
    await shot(board.page, 'board-duress');

    // The same screen as a normal check-out, and no alarm on the phone after its next look.
    const camilla = await phone(browser);
    await workerOnShift(camilla.page, 'camilla');
    await startLoneVisit(camilla.page);
    await checkOut(camilla.page, '1234');
    const normal = await camilla.page.evaluate(() => document.querySelector('[data-screen=done]').outerHTML);
    const duressShown = await anna.page.evaluate(() => document.querySelector('[data-screen=done]').outerHTML);
    assert.equal(duressShown, normal, 'a duress check-out looks exactly like a normal one');
    await anna.page.waitForTimeout(5000);
    assert.ok(await anna.page.isHidden('#alarm-banner'), 'no alarm shows on the phone');
    await browser.close();
  },

  /// The server restarts; changes made while the board was away reach it by Last-Event-ID,
  /// without a new snapshot.
  async 'board-restart'() {
    const browser = await launch();
    const board = await desk(browser);
    await boardReady(board.page);
    const bo = await token('bo');
    await ask('stop');
    await board.page.waitForSelector('#live-lost:not([hidden])');
    await shot(board.page, 'board-connection-lost');
    const before = Number(await board.page.getAttribute('body', 'data-snapshots'));
    // The board stays away while the server comes back and things change.
    await board.context.setOffline(true);
    await ask('start');
    await call(bo, 'POST', '/api/v1/shift/start', {});
    const place = (await call(bo, 'GET', `/api/v1/places/near?lat=${AT_HOME.latitude}&lon=${AT_HOME.longitude}&radius_m=500`))[0];
    const questions = await call(bo, 'GET', '/api/v1/assessment/questions');
    const anna = await token('anna');
    await call(anna, 'POST', '/api/v1/shift/start', {});
    await call(bo, 'POST', '/api/v1/visits', {
      kind: 'home_visit_announced', place_id: place.id, planned_minutes: 30,
      answers: Object.fromEntries(questions.map((q) => [q.id, false])), tell_colleague_id: null,
      partners: [{ person_id: (await call(anna, 'GET', '/api/v1/me')).id, role: 'observer' }],
    });
    await board.context.setOffline(false);
    const boRow = row(board.page, 'Bo Nielsen');
    await boRow.and(board.page.locator('[data-state=in_visit]')).waitFor();
    await board.page.waitForSelector('#live-lost', { state: 'hidden' });
    const after = Number(await board.page.getAttribute('body', 'data-snapshots'));
    assert.equal(after, before, 'resumed with Last-Event-ID: no new snapshot');
    assert.match(await boRow.textContent(), /Anna Jensen/, 'the partner shows');
    await shot(board.page, 'board-reconnected');
    await browser.close();
  },

  /// Issues 8.2 and 4.5: Anna's phone reports its battery on shift (a fake BatteryManager at
  /// 15 %, then draining and charging); the board shows it low at once and each change live.
  /// The board's map and list hold every place of the team. The supervisor reports an incident
  /// on Anna's visit with a warning on the place; the report exists, and the warning shows on
  /// the board and in the app's place list.
  async 'board-battery-incident'() {
    const browser = await launch();
    const board = await desk(browser);
    await boardReady(board.page);
    await call(await token('bo'), 'POST', '/api/v1/shift/start', {});
    const anna = await phone(browser, AT_HOME);
    await anna.context.addInitScript(() => {
      const battery = new EventTarget();
      Object.assign(battery, { level: 0.15, charging: false, chargingTime: Infinity, dischargingTime: 3600 });
      window.fakeBattery = battery;
      Object.defineProperty(Navigator.prototype, 'getBattery', { configurable: true, value: () => Promise.resolve(battery) });
    });
    await workerOnShift(anna.page, 'anna');
    const onShift = Date.now();
    const battery = row(board.page, 'Anna Jensen').locator('td.battery');
    await battery.and(board.page.locator('[data-battery="15"][data-low=true]')).waitFor({ timeout: 2500 });
    console.log(`the board showed the battery ${Date.now() - onShift} ms after the shift started`);
    assert.match(await battery.textContent(), /15 %/);
    assert.equal(await battery.getAttribute('data-charging'), 'false');
    assert.equal(await battery.evaluate((td) => getComputedStyle(td).backgroundColor), 'rgb(176, 0, 0)', 'low is loud');
    await shot(board.page, 'board-battery-low');
    const snapshots = await board.page.getAttribute('body', 'data-snapshots');
    const drain = (level, charging) => anna.page.evaluate(([l, c]) => {
      const b = window.fakeBattery;
      const event = b.charging === c ? 'levelchange' : 'chargingchange';
      Object.assign(b, { level: l, charging: c });
      b.dispatchEvent(new Event(event));
    }, [level, charging]);
    await drain(0.09, false);
    await battery.and(board.page.locator('[data-battery="9"]')).waitFor({ timeout: 2500 });
    await drain(0.08, true);
    await battery.and(board.page.locator('[data-battery="8"][data-charging=true]')).waitFor({ timeout: 2500 });
    assert.match(await battery.textContent(), /8 %.*⚡/);
    // Only a move of 5 points is worth a report: 8 → 10 % is not sent.
    await drain(0.1, true);
    await board.page.waitForTimeout(1500);
    assert.equal(await battery.getAttribute('data-battery'), '8', 'small moves are not reported');
    await drain(0.35, true);
    await battery.and(board.page.locator('[data-battery="35"][data-low=false]')).waitFor({ timeout: 2500 });
    assert.equal(await board.page.getAttribute('body', 'data-snapshots'), snapshots, 'live events, no new snapshot');
    await shot(board.page, 'board-battery-charging');

    // Every place of the team, on the map and in the list, however far from the map's centre.
    const sofie = await token('sofie');
    const team = (await call(sofie, 'GET', '/api/v1/me')).teams[0];
    const places = await call(sofie, 'GET', `/api/v1/teams/${team}/places`);
    assert.ok(places.length >= 8, `the demo's places: ${places.length}`);
    await board.page.waitForFunction((n) => document.querySelectorAll('#place-list li').length === n, places.length);
    for (const p of places) {
      assert.equal(await board.page.locator(`#place-list li[data-place="${p.id}"]`).count(), 1, `${p.name} is listed`);
    }
    const markers = await board.page.locator('#map path.leaflet-interactive').count();
    assert.ok(markers >= places.length, `a marker per place: ${markers}`);

    // The supervisor reports on Anna's visit and warns the place.
    await startLoneVisit(anna.page);
    const { visit } = await call(await token('anna'), 'GET', '/api/v1/visits/active');
    const annaRow = row(board.page, 'Anna Jensen');
    await annaRow.and(board.page.locator('[data-state=in_visit]')).waitFor();
    await annaRow.locator('button.report-incident').click();
    await board.page.waitForSelector('#incident-dialog[open]');
    assert.equal(await board.page.inputValue('#incident-place'), visit.place_id, "the visit's place");
    await board.page.click('#incident-kinds button[data-kind=violence]');
    await board.page.fill('#incident-text', 'Beboeren skubbede Anna ud af døren');
    await board.page.check('#incident-warn');
    const until = await board.page.inputValue('#incident-warning-until');
    const days = (Date.parse(until) - Date.now()) / 864e5;
    assert.ok(days > 363 && days < 367, `a warning lasts 12 months unless said: ${until}`);
    await board.page.fill('#incident-warning-text', 'Voldsom beboer – kom altid to');
    await shot(board.page, 'board-incident-dialog');
    await board.page.click('#incident-form button[type=submit]');
    await board.page.waitForSelector('#incident-dialog', { state: 'hidden' });
    await annaRow.locator('.reported').waitFor();
    await annaRow.locator('.warning', { hasText: 'Voldsom beboer' }).waitFor();
    await board.page.locator(`#place-list li[data-place="${visit.place_id}"] .warning`, { hasText: 'Voldsom beboer' }).waitFor();
    await shot(board.page, 'board-incident-reported');
    const incidents = await call(sofie, 'GET', `/api/v1/teams/${team}/incidents`);
    const report = incidents.find((i) => i.description === 'Beboeren skubbede Anna ud af døren');
    assert.ok(report, 'the report reached the team');
    assert.equal(report.kind, 'violence');
    assert.equal(report.visit_id, visit.id, 'tied to the visit');
    assert.equal(report.place_id, visit.place_id, 'and its place');
    assert.ok(report.warning_id, 'with a warning on the place');

    // The app's place list warns the next visit there.
    await checkOut(anna.page, '1234');
    await anna.page.click('#done-ok');
    await anna.page.click('#new-visit');
    await anna.page.waitForSelector('#places [aria-checked=true]');
    await anna.page.locator('#place-warnings', { hasText: 'Voldsom beboer – kom altid to' }).waitFor();
    await shot(anna.page, 'phone-place-warning');
    await browser.close();
  },

  /// The manager's coverage pages over the demo's eight weeks: figures, the map of stops
  /// coloured by coverage, the heat map, the trend, gaps, two periods compared, a CSV export
  /// and the printout; never a worker's name. A worker is turned away.
  async 'manager-coverage'() {
    const browser = await launch();
    const desk1 = await desk(browser);
    const { page } = desk1;
    await signIn(page, '/manager/', 'lars');
    await page.waitForSelector('#totals tbody tr');
    const planned = Number(await page.locator('#totals tbody tr').first().locator('td').nth(1).textContent());
    assert.ok(planned > 0, `the demo's history plans stops: ${planned}`);
    const stops = page.locator('#map path.leaflet-interactive.stop');
    await stops.first().waitFor();
    const grades = await stops.evaluateAll((els) => els.map((e) => [...e.classList].find((c) => ['good', 'fair', 'poor', 'none'].includes(c))));
    assert.ok(grades.length > 0 && grades.every(Boolean), `every stop is coloured: ${grades}`);
    assert.equal(await page.locator('#heat tbody tr').count(), 7, 'a row per weekday');
    assert.ok(await page.locator('#trend svg rect').count() >= 4, 'a bar per week');
    await page.waitForSelector('#gaps tbody tr');
    await shot(page, 'manager-coverage');
    // Nobody is named: coverage never identifies a worker.
    const text = await page.locator('body').innerText();
    for (const name of ['Anna Jensen', 'Bo Nielsen', 'Camilla Sørensen', 'Dennis Larsen']) {
      assert.ok(!text.includes(name), `${name} is not on the coverage page`);
    }
    // Two periods side by side: the four weeks before, and the change.
    const from = await page.inputValue('#period [name=from]');
    const before = new Date(Date.parse(from) - 28 * 864e5).toISOString().slice(0, 10);
    const until = new Date(Date.parse(from) - 864e5).toISOString().slice(0, 10);
    await page.fill('#period [name=from2]', before);
    await page.fill('#period [name=to2]', until);
    await page.click('#period button[type=submit]');
    await page.waitForFunction(() => document.querySelectorAll('#totals thead th').length === 4);
    await shot(page, 'manager-compare');
    // The CSV export answers with the table for a spreadsheet.
    const href = await page.getAttribute('a.export[href*="table=stops"]', 'href');
    const csv = await page.evaluate(async (url) => {
      const r = await fetch(url, { credentials: 'same-origin' });
      return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
    }, href);
    assert.equal(csv.status, 200, csv.body);
    assert.match(csv.type, /text\/csv/);
    assert.ok(csv.body.split('\n').length > 2, 'a header and rows');
    // Printing hides the controls.
    await page.emulateMedia({ media: 'print' });
    assert.ok(!(await page.isVisible('#period')), 'no form on paper');
    await shot(page, 'manager-print');
    // A worker has no coverage pages.
    const worker = await phone(browser);
    await signIn(worker.page, '/manager/', 'anna');
    await worker.page.waitForSelector('[data-screen=forbidden]:not([hidden])');
    await browser.close();
  },
  /// The planning page (issue 4.1): the manager imports areas from a GeoJSON file (a bad file
  /// changes nothing and says why), deletes one after a confirmation, plans a route with two
  /// stops (the server's refusal shows by the form), edits it, exports and re-imports the
  /// routes; a supervisor reads the plans without the controls to change them; a worker is
  /// turned away.
  async 'manager-plans'() {
    const { readFile } = await import('node:fs/promises');
    const browser = await launch();
    const { page } = await desk(browser);
    const file = (name, json) => ({ name, mimeType: 'application/geo+json', buffer: Buffer.from(JSON.stringify(json)) });
    const square = (lon, lat, d) => [[[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]];
    const areaNames = () => page.locator('#areas tbody td:first-child').allTextContents();
    const routeRow = (p, name) => p.locator('#routes tbody tr', { has: p.locator('td:first-child', { hasText: new RegExp(`^${name}$`) }) });
    const stops = page.locator('#stops fieldset.stop');

    await signIn(page, '/manager/plan.html', 'lars');
    await page.waitForSelector('body[data-loaded][data-mode=plan]');
    assert.deepEqual(await areaNames(), ['Gellerup', 'Midtbyen', 'Trøjborg']);
    await page.locator('#map path.area').first().waitFor();
    assert.ok(await page.locator('#map path.place').count() >= 6, 'the team’s places on the map');

    // Areas from a file: a new name is added and drawn.
    const east = { type: 'FeatureCollection', features: [
      { type: 'Feature', properties: { name: 'Østbyen' }, geometry: { type: 'Polygon', coordinates: square(10.215, 56.155, 0.01) } }] };
    await page.setInputFiles('#areas-file', file('bydele.geojson', east));
    await page.waitForSelector('#areas-status:has-text("indlæst")');
    const four = ['Gellerup', 'Midtbyen', 'Trøjborg', 'Østbyen']; // Danish order
    assert.deepEqual(await areaNames(), four);
    assert.equal(await page.locator('#map path.area').count(), 4);
    await shot(page, 'plan-areas-imported');

    // A bad file (a point among the areas): the server's reason shows, and nothing changes.
    const bad = { type: 'FeatureCollection', features: [
      { type: 'Feature', properties: { name: 'Ny bydel' }, geometry: { type: 'Polygon', coordinates: square(10.1, 56.1, 0.02) } },
      { type: 'Feature', properties: { name: 'Et punkt' }, geometry: { type: 'Point', coordinates: [10.2, 56.15] } }] };
    await page.setInputFiles('#areas-file', file('forkert.geojson', bad));
    await page.waitForSelector('#areas-error:has-text("forkert.geojson")');
    assert.match(await page.textContent('#areas-error'), /intet er ændret.*feature \d+: needs a Polygon or MultiPolygon geometry/);
    assert.ok(await page.isHidden('#areas-status'), 'no success message');
    assert.deepEqual(await areaNames(), four);
    await shot(page, 'plan-areas-bad-file');
    await page.reload();
    await page.waitForSelector('body[data-loaded]');
    assert.deepEqual(await areaNames(), four, 'all or nothing: the good feature was not taken either');

    // Deleting asks first.
    let asked = '';
    page.once('dialog', (d) => { asked = d.message(); d.accept(); });
    await page.click('#areas button[aria-label="Slet: Østbyen"]');
    await page.waitForSelector('#areas-status:has-text("slettet")');
    assert.match(asked, /Østbyen/);
    assert.deepEqual(await areaNames(), ['Gellerup', 'Midtbyen', 'Trøjborg']);

    // A route with two stops: Mølleparken Monday and Wednesday, Banegårdspladsen on Friday.
    await page.click('#new-route');
    await page.fill('#route-name', 'Aftenrunde');
    await stops.nth(0).locator('select[name=place]').selectOption({ label: 'Mølleparken' });
    for (const day of ['Tir', 'Tor', 'Fre']) await stops.nth(0).getByLabel(day, { exact: true }).uncheck();
    await stops.nth(0).locator('[name=opens]').fill('18:00');
    await stops.nth(0).locator('[name=closes]').fill('19:00');
    await page.click('#add-stop');
    await stops.nth(1).locator('select[name=place]').selectOption({ label: 'Banegårdspladsen' });
    await stops.nth(1).getByLabel('Fre', { exact: true }).check();
    await stops.nth(1).locator('[name=opens]').fill('20:00');
    await stops.nth(1).locator('[name=closes]').fill('19:30');
    await page.click('#save-route');
    await page.waitForSelector('#route-error:has-text("window must open before it closes")');
    await shot(page, 'plan-route-refused');
    await stops.nth(1).locator('[name=closes]').fill('21:00');
    await page.click('#save-route');
    await page.waitForSelector('#route-form', { state: 'hidden' });
    assert.equal(await routeRow(page, 'Aftenrunde').locator('td').nth(2).textContent(), '3', 'three windows a week');

    // Edited: a new name and a later end on Fridays, still there after a reload.
    await routeRow(page, 'Aftenrunde').getByRole('button').click();
    await page.fill('#route-name', 'Aftenrunde, Midtbyen');
    await stops.nth(1).locator('[name=closes]').fill('21:30');
    await page.click('#save-route');
    await page.waitForSelector('#route-form', { state: 'hidden' });
    await page.reload();
    await page.waitForSelector('body[data-loaded]');
    assert.equal(await routeRow(page, 'Aftenrunde').count(), 0, 'renamed, not copied');
    await routeRow(page, 'Aftenrunde, Midtbyen').getByRole('button', { name: /Ret/ }).click();
    assert.equal(await page.inputValue('#route-name'), 'Aftenrunde, Midtbyen');
    assert.equal(await stops.count(), 2);
    const row = async (i) => ({
      place: await stops.nth(i).locator('select option:checked').textContent(),
      days: await stops.nth(i).locator('[name=weekday]:checked').evaluateAll((els) => els.map((e) => Number(e.value))),
      opens: await stops.nth(i).locator('[name=opens]').inputValue(),
      closes: await stops.nth(i).locator('[name=closes]').inputValue(),
    });
    assert.deepEqual(await row(0), { place: 'Mølleparken', days: [1, 3], opens: '18:00', closes: '19:00' });
    assert.deepEqual(await row(1), { place: 'Banegårdspladsen', days: [5], opens: '20:00', closes: '21:30' });
    await shot(page, 'plan-route-edited');
    await page.click('#close-route');

    // Exported as GeoJSON: a point per stop, with the route, place, weekday and window.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#routes-export')]);
    const exported = JSON.parse(await readFile(await download.path(), 'utf8'));
    assert.equal(exported.type, 'FeatureCollection');
    const mine = exported.features.filter((f) => f.properties.route === 'Aftenrunde, Midtbyen');
    assert.deepEqual(mine.map((f) => [f.geometry.type, f.properties.place, f.properties.weekday, f.properties.opens, f.properties.closes]), [
      ['Point', 'Mølleparken', 1, '18:00', '19:00'], ['Point', 'Mølleparken', 3, '18:00', '19:00'],
      ['Point', 'Banegårdspladsen', 5, '20:00', '21:30']]);
    // …and read back in under another name: a route is added.
    for (const f of mine) f.properties.route = 'Weekendrunde';
    await page.setInputFiles('#routes-file', file('ruter.geojson', { type: 'FeatureCollection', features: mine }));
    await page.waitForSelector('#routes-status:has-text("indlæst")');
    assert.equal(await routeRow(page, 'Weekendrunde').locator('td').nth(2).textContent(), '3');
    assert.equal(await routeRow(page, 'Aftenrunde, Midtbyen').count(), 1);
    await shot(page, 'plan-routes');

    // Between the two manager pages, and in Swedish.
    await page.click('header a[href="/manager/"]');
    await page.waitForSelector('#totals tbody tr');
    await page.click('header a[href="/manager/plan.html"]');
    await page.waitForSelector('body[data-loaded]');
    await page.selectOption('#lang', 'sv');
    assert.equal(await page.textContent('#h-routes'), 'Rutter');

    // The supervisor reads the plans but changes nothing.
    const supervisor = await desk(browser);
    await signIn(supervisor.page, '/manager/plan.html', 'sofie');
    await supervisor.page.waitForSelector('body[data-loaded][data-mode=read]');
    assert.ok(await supervisor.page.isVisible('#read-only'));
    for (const control of ['#areas-file', '#routes-file', '#new-route', '#areas button']) {
      assert.ok(await supervisor.page.isHidden(control), `${control} is not for a supervisor`);
    }
    await routeRow(supervisor.page, 'Aftenrunde, Midtbyen').getByRole('button', { name: /Vis/ }).click();
    assert.ok(await supervisor.page.isDisabled('#route-name'));
    assert.ok(await supervisor.page.isDisabled('#stops fieldset.stop:first-child select'));
    assert.ok(await supervisor.page.isHidden('#save-route'));
    await shot(supervisor.page, 'plan-supervisor-read-only');

    // A worker has no planning page.
    const worker = await phone(browser);
    await signIn(worker.page, '/manager/plan.html', 'anna');
    await worker.page.waitForSelector('[data-screen=forbidden]:not([hidden])');
    await shot(worker.page, 'plan-worker-refused');
    await browser.close();
  },
};

const name = process.argv[2];
assert.ok(SCENARIOS[name], `unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(', ')}`);
try {
  await SCENARIOS[name]();
  console.log(`scenario ${name}: passed`);
} catch (e) {
  console.error(`scenario ${name}: FAILED\n${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await Promise.all(browsers.map((b) => b.close().catch(() => {})));
  process.stdin.destroy();
}
