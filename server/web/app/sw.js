// The app's service worker: keeps the app's own files for opening without a network, and
// shows pushed reminders and alarms as notifications that stay until touched. The API is
// never cached: what the server says is always fresh or an error.

const CACHE = 'makker-app-v1';
const SHELL = [
  '/app/', '/app/app.js', '/app/app.css', '/app/queue.js', '/app/approval.js', '/app/manifest.webmanifest', '/app/icon.svg',
  '/shared/api.js', '/shared/i18n.js', '/shared/dom.js', '/shared/incident.js', '/shared/common.css',
];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

// Network first (a new version shows at once), the cache when offline.
self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== location.origin || !SHELL.includes(url.pathname)) return;
  event.respondWith(fetch(event.request)
    .then((res) => {
      if (res.ok) {
        const copy = res.clone();
        event.waitUntil(caches.open(CACHE).then((c) => c.put(event.request, copy)));
      }
      return res;
    })
    .catch(() => caches.match(event.request)));
});

/// Push kinds (server/notify's `PushKind`) that vibrate and stay, and those that only stay.
const URGENT = ['alarm', 'check_in_overdue', 'check_in_due'];
const STAYING = ['alarm_resolved', 'shift_reminder'];

/// A newer notification replaces an older one of the same tag: an alarm's news replace each
/// other, and so do a visit's check-in reminders; a notice about the visit must not replace
/// a reminder that waits to be touched.
function tagOf(data) {
  if (data.alarm_id) return `alarm-${data.alarm_id}`;
  if (data.visit_id) return `${data.kind?.startsWith('check_in') ? 'check_in' : data.kind}-${data.visit_id}`;
  return data.kind || 'makker';
}

self.addEventListener('push', (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { title: 'Makker', body: event.data?.text() ?? '' };
  }
  // Alarms and reminders stay until the worker touches them (a missed one escalates).
  const urgent = URGENT.includes(data.kind);
  event.waitUntil(self.registration.showNotification(data.title || 'Makker', {
    body: data.body || '',
    tag: tagOf(data),
    renotify: true,
    requireInteraction: urgent || STAYING.includes(data.kind),
    vibrate: urgent ? [400, 200, 400, 200, 400] : undefined,
    data: { url: '/app/', kind: data.kind ?? null },
  }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((list) => {
    const open = list.find((c) => new URL(c.url).pathname.startsWith('/app/'));
    return open ? open.focus() : self.clients.openWindow('/app/');
  }));
});
