// The API from a page: the web session cookie (HttpOnly, set by the server) authenticates;
// every change carries the session's CSRF token. Errors are problem+json.

import { t, setLang, lang, translate } from './i18n.js';
import { h } from './dom.js';

let csrf = null;

/// A problem answer from the server (RFC 9457): `type` is stable.
export class Problem extends Error {
  constructor(status, body) {
    super(body?.detail || body?.title || `HTTP ${status}`);
    this.status = status;
    this.type = body?.type || '';
    this.reason = body?.reason || null;
  }
}

export const CSRF = 'urn:makker:problem:csrf';
/// The server is still handling an earlier send of the same Idempotency-Key: not an answer yet.
export const IN_PROGRESS = 'urn:makker:problem:idempotency-in-progress';

/// The network is gone (not an answer from the server).
export class Offline extends Error {}

/// One API call. `key` is sent as `Idempotency-Key`, so a replay is answered once.
export async function api(method, path, body, key) {
  // A page opened offline has no CSRF token yet: fetch it before the first change.
  if (method !== 'GET' && !csrf && !path.startsWith('/api/v1/auth/session')) await currentPerson();
  // Refusals and the risk questions come in the page's language.
  const headers = { 'accept-language': lang() };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  if (key) headers['idempotency-key'] = key;
  let res;
  try {
    res = await fetch(path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new Offline(t('offline'));
  }
  if (res.status === 204) return null;
  const json = await res.json().catch(() => null);
  if (!res.ok) throw new Problem(res.status, json);
  return json;
}

function remember(s) {
  csrf = s.csrf_token;
  setLang(s.person.lang);
  return s.person;
}

/// The signed-in person, or null (a reloaded page gets its CSRF token again).
export async function currentPerson() {
  try {
    return remember(await api('GET', '/api/v1/auth/session'));
  } catch (e) {
    if (e instanceof Problem && e.status === 401) return null;
    throw e;
  }
}

export async function signIn(username, password) {
  return remember(await api('POST', '/api/v1/auth/session', { username, password }));
}

export async function signOut() {
  await api('DELETE', '/api/v1/auth/session');
  csrf = null;
}

/// Wires a login form; calls `done(person)`. An empty `<form data-title="key">` gets the
/// fields (every page signs in the same way).
export function loginForm(form, done) {
  if (!form.querySelector('input')) {
    const field = (name, type, complete) => [
      h('label', { for: name, 'data-i18n': name }),
      h('input', { id: name, name, type, autocomplete: complete, autocapitalize: 'none', required: true }),
    ];
    form.append(h('h1', { 'data-i18n': form.dataset.title }),
      ...field('username', 'text', 'username'), ...field('password', 'password', 'current-password'),
      h('p', { role: 'alert', class: 'error' }),
      h('button', { class: 'primary', type: 'submit', 'data-i18n': 'sign_in' }));
    translate(form);
  }
  const error = form.querySelector('[role=alert]');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    const data = new FormData(form);
    try {
      done(await signIn(data.get('username'), data.get('password')));
      form.reset();
    } catch (e) {
      error.textContent = e instanceof Problem && e.status === 429 ? t('locked')
        : e instanceof Problem && e.status === 401 ? t('sign_in_failed') : e.message;
    }
  });
}
