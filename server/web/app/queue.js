// The offline queue: a worker's signals (check-in, check-out, extend, withdraw, SOS) are kept
// in IndexedDB until the server has them, so they survive closing the app. Each carries the
// phone's time of the action (`client_time`, which the server keeps beside its own) and an
// Idempotency-Key made when it was queued: a replay after a lost answer is answered once.
// Replayed in the order queued; a refusal (4xx) drops the entry and is reported. A send the
// server is still handling (409 idempotency-in-progress) is no refusal: it stays queued.

import { api, CSRF, IN_PROGRESS, Offline, Problem } from '/shared/api.js';

const DB = 'makker';
const STORE = 'outbox';

function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'seq', autoIncrement: true });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx(mode, work) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const t = db.transaction(STORE, mode);
    const result = work(t.objectStore(STORE));
    t.oncomplete = () => { db.close(); resolve(result.result ?? result); };
    t.onerror = () => { db.close(); reject(t.error); };
  });
}

/// Everything waiting, oldest first.
export function pending() {
  return tx('readonly', (s) => s.getAll());
}

/// Queues a call; the body gets the phone's time now (in `stamp`, unless null).
export async function enqueue(path, body = {}, stamp = 'client_time') {
  const entry = {
    path,
    body: stamp ? { ...body, [stamp]: new Date().toISOString() } : body,
    key: crypto.randomUUID(),
  };
  await tx('readwrite', (s) => s.add(entry));
  return entry;
}

let running = null;

/// Sends what waits, in order; stops at the first network failure. Resolves to the answers
/// (`{entry, result}` or `{entry, problem}`) of what left the queue.
export function flush() {
  running ??= drain().finally(() => { running = null; });
  return running;
}

async function drain() {
  const done = [];
  for (const entry of await pending()) {
    let outcome;
    try {
      outcome = { entry, result: await api('POST', entry.path, entry.body, entry.key) };
    } catch (e) {
      if (e instanceof Offline || (e instanceof Problem && e.status >= 500)) break;
      // Signed out, or the session's token not yet known: keep it for later.
      if (e instanceof Problem && (e.status === 401 || e.type === CSRF)) break;
      // An earlier send is still being handled (its answer was lost, e.g. to a network
      // change): the next replay gets that answer.
      if (e instanceof Problem && e.type === IN_PROGRESS) break;
      outcome = { entry, problem: e };
    }
    await tx('readwrite', (s) => s.delete(entry.seq));
    done.push(outcome);
  }
  return done;
}
