/**
 * Web Push for reminders (PROTOCOL §6.1c): the service worker at `/sw.js`
 * shows a reminder when no tab of the app is open or visible. This browser
 * subscribes with the server's VAPID key and hands the subscription over;
 * signing out hands it back and drops it, so the next user of this browser
 * does not get this one's reminders.
 */
import type { PushSubscribe } from '$shared/schemas/reminders';
import type { Connection } from '../../lib/connection.svelte';
import { serviceWorkerRegistration } from './notifier';

export const serviceWorkerUrl = '/sw.js';
/** Signing out waits at most this long for the server to forget the subscription. */
const unsubscribeTimeoutMs = 3_000;

export function pushSupported(): boolean {
  return typeof window !== 'undefined' && 'serviceWorker' in navigator && 'PushManager' in window && typeof Notification !== 'undefined';
}

/** A base64url string (the VAPID key) as bytes. */
export function base64UrlBytes(value: string): Uint8Array<ArrayBuffer> {
  const base64 = value.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(value.length / 4) * 4, '=');
  const raw = atob(base64);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

function sameBytes(a: ArrayBuffer | null, b: Uint8Array): boolean {
  if (!a || a.byteLength !== b.byteLength) return false;
  const view = new Uint8Array(a);
  return view.every((x, i) => x === b[i]);
}

function wirePayload(subscription: PushSubscription): PushSubscribe | null {
  const json = subscription.toJSON();
  const p256dh = json.keys?.p256dh;
  const auth = json.keys?.auth;
  if (!json.endpoint || !p256dh || !auth) return null;
  return { endpoint: json.endpoint, expirationTime: json.expirationTime ?? null, keys: { p256dh, auth } };
}

export type PushOutcome = 'subscribed' | 'not-configured' | 'unsupported';

/**
 * Registers the service worker and subscribes this browser, when the server
 * has a VAPID key. Needs notification permission already granted. Throws
 * when the browser's push service or the server refuses.
 */
export async function subscribePush(connection: Connection): Promise<PushOutcome> {
  if (!pushSupported() || Notification.permission !== 'granted') return 'unsupported';
  const key = await connection.request('push:key', {});
  if (!key.ok) throw new Error(`push:key: ${key.error.message}`);
  if (key.data.publicKey === null) return 'not-configured';
  const applicationServerKey = base64UrlBytes(key.data.publicKey);
  const registration = await navigator.serviceWorker.register(serviceWorkerUrl, { scope: '/' });
  await navigator.serviceWorker.ready;
  let subscription = await registration.pushManager.getSubscription();
  // A subscription made for another key (the server's keys were rotated) cannot be used with this one.
  if (subscription && !sameBytes(subscription.options.applicationServerKey, applicationServerKey)) {
    await subscription.unsubscribe();
    subscription = null;
  }
  subscription ??= await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey });
  const payload = wirePayload(subscription);
  if (!payload) throw new Error('push subscription without endpoint or keys');
  const res = await connection.request('push:subscribe', payload);
  if (!res.ok) throw new Error(`push:subscribe: ${res.error.message}`);
  return 'subscribed';
}

/** Tells the server to forget this browser's subscription, then drops it. Never throws. */
export async function unsubscribePush(connection: Connection): Promise<void> {
  try {
    const registration = await serviceWorkerRegistration();
    const subscription = await registration?.pushManager.getSubscription();
    if (!subscription) return;
    await connection.request('push:unsubscribe', { endpoint: subscription.endpoint }, unsubscribeTimeoutMs);
    await subscription.unsubscribe();
  } catch {
    // Signing out goes on: the server drops a subscription that the push service reports gone.
  }
}
