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
    const browser = await launch();
    const board = await desk(browser);
    await boardReady(board.page);
    // A colleague on shift, to be told when Anna leaves the home (rule 6).
    const bo = await token('bo');
    await call(bo, 'POST', '/api/v1/shift/start', {});
    const anna = await phone(browser);
    await workerOnShift(anna.page, 'anna');
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
    await browser.close();
  },

  /// Offline, the worker checks in and then out; the app is closed and opened again; when
  /// the network returns the queue replays in order, and the server keeps the phone's times.
  async 'offline-queue'() {
    const browser = await launch();
    const bo = await token('bo');
    await call(bo, 'POST', '/api/v1/shift/start', {});
    const anna = await phone(browser);
    await workerOnShift(anna.page, 'anna');
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
    const browser = await launch();
    const board = await desk(browser);
    await boardReady(board.page);
    const bo = await token('bo');
    await call(bo, 'POST', '/api/v1/shift/start', {});
    const anna = await phone(browser);
    await workerOnShift(anna.page, 'anna');
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
