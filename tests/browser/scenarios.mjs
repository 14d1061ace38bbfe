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
