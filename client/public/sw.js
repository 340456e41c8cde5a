/**
 * Sam's service worker: Web Push for reminders (PROTOCOL §6.1c). It shows a
 * reminder that arrives while no tab of the app is visible; a visible tab
 * shows its own toast (and one tab the notification), so it then stays quiet.
 * Nothing else: no fetch handler, no cache.
 *
 * Payload: { title, body, reminderId, taskId, url }.
 */
'use strict';

self.addEventListener('install', () => {
  // A new version takes over at once: there is no cached state to migrate.
  self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

/** A same-origin path to open, never another site's address. */
function appUrl(url) {
  try {
    const u = new URL(typeof url === 'string' && url ? url : '/', self.location.origin);
    return u.origin === self.location.origin ? u.href : new URL('/', self.location.origin).href;
  } catch {
    return new URL('/', self.location.origin).href;
  }
}

function readPayload(data) {
  if (!data) return null;
  try {
    const p = data.json();
    if (!p || typeof p !== 'object' || typeof p.title !== 'string') return null;
    return p;
  } catch {
    return null;
  }
}

self.addEventListener('push', (event) => {
  const payload = readPayload(event.data);
  if (!payload) return;
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      if (windows.some((w) => w.visibilityState === 'visible')) return;
      const reminderId = typeof payload.reminderId === 'string' ? payload.reminderId : '';
      await self.registration.showNotification(payload.title.slice(0, 200), {
        body: typeof payload.body === 'string' ? payload.body.slice(0, 500) : '',
        // The same tag as the page's notification for this reminder, so that one replaces the other.
        tag: reminderId ? `reminder:${reminderId}` : undefined,
        data: { reminderId, taskId: typeof payload.taskId === 'string' ? payload.taskId : null, url: appUrl(payload.url) },
      });
    })(),
  );
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = appUrl(event.notification.data && event.notification.data.url);
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      const existing = windows.find((w) => new URL(w.url).origin === self.location.origin);
      if (existing) {
        await existing.focus();
        return;
      }
      await self.clients.openWindow(url);
    })(),
  );
});
