/**
 * The end of a streaming answer and the announcements that keep tabs in step:
 * every way an answer ends (its node finishing, a cancel, the sweeper) goes
 * through `endStreaming`.
 */
import type { Redis } from '../../redis.js';
import type { Broadcaster } from '../../realtime/rooms.js';
import { bufferKeys, heartbeatKey } from './stream-buffer.js';
import { toConversation, toMessage, type ChatRepository, type MessageEnd, type MessageRow } from './chat.repository.js';

export interface ChatViews {
  /**
   * Ends a streaming message, unless something ended it first (the generating
   * node, the sweeper, a cancel: the first wins); then its Redis buffer and
   * heartbeat go, and the user's tabs get `chat:done` and the conversation with
   * its `generating` flag (bumped when `touchConversation`, as a finished answer
   * does). Returns the ended message, or undefined when it was already ended.
   */
  endStreaming(messageId: string, end: MessageEnd, options?: { touchConversation?: boolean }): Promise<MessageRow | undefined>;
}

export function createChatViews(deps: { chat: ChatRepository; redis: Redis; broadcaster: Broadcaster }): ChatViews {
  const { chat, redis, broadcaster } = deps;
  return {
    async endStreaming(messageId, end, options = {}) {
      const ended = await chat.endStreaming(messageId, end, new Date(), options.touchConversation ?? false);
      await redis.del(...bufferKeys(messageId), heartbeatKey(messageId)).catch(() => undefined);
      if (!ended) return undefined;
      const { message, conversation } = ended;
      broadcaster.toUser(message.userId, 'chat:done', { conversationId: message.conversationId, message: toMessage(message) });
      if (conversation) broadcaster.toUser(message.userId, 'conversation:changed', { conversation: toConversation(conversation) });
      return message;
    },
  };
}
