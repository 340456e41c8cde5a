/** Socket handlers of Web Push subscriptions (`push:*`, issue 20). */
import { defineHandler, type EventsOf, type HandlersOf } from '../../realtime/define-handler.js';
import type { PushNotifier } from './push.js';

export function pushHandlers(push: PushNotifier) {
  return {
    'push:key': defineHandler('push:key', async () => ({ publicKey: push.publicKey() })),
    'push:subscribe': defineHandler('push:subscribe', async (ctx, sub) => {
      await push.subscribe(ctx.userId, sub, ctx.socket.handshake.headers['user-agent']);
      return {};
    }),
    'push:unsubscribe': defineHandler('push:unsubscribe', async (ctx, { endpoint }) => {
      await push.unsubscribe(ctx.userId, endpoint);
      return {};
    }),
  } satisfies HandlersOf<EventsOf<'push'>>;
}
