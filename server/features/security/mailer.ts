/**
 * Outgoing mail (AUTH-16) through a durable outbox in PostgreSQL: a message is
 * queued in the caller's path and sent by a loop on every node, so an SMTP
 * server that is down delays it instead of losing it. Nodes claim due
 * messages with FOR UPDATE SKIP LOCKED and a lease, so each goes out once;
 * a failed attempt is retried with exponential backoff, and given up (logged
 * as an error) after `MAX_ATTEMPTS`. The body is sealed at rest: it carries a
 * reset link.
 *
 * With SMTP_URL, nodemailer sends over SMTP; without it outside production the
 * message is written to the log (a development mailbox); in production
 * without it nothing can be sent, and the caller logs an error instead.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import type { Logger } from '../../logger.js';
import type { SecretBox } from './secret-box.js';
import type { SecurityRepository } from './security.repository.js';

/** How long a claimed message is hidden from other nodes while this one sends it. */
const LEASE_SECONDS = 60;
/** Retries 1 s, 2 s, 4 s … apart, at most 5 minutes: the 14th attempt comes about half an hour in, when a reset link dies. */
const MAX_ATTEMPTS = 14;
const MAX_BACKOFF_SECONDS = 300;
const POLL_MS = 5_000;
const BATCH = 10;

export interface Mail {
  to: string;
  subject: string;
  text: string;
}

export interface Mailer {
  /** false in production without SMTP_URL: nothing could send it */
  readonly canSend: boolean;
  /** Queues the message durably and wakes the sender. */
  send(mail: Mail): Promise<void>;
  /** Starts this node's delivery loop (none when nothing could send); returns its stop. */
  start(): () => Promise<void>;
}

export function createMailer(deps: {
  repository: SecurityRepository;
  box: SecretBox;
  logger: Logger;
  smtpUrl: string | undefined;
  from: string;
  isProduction: boolean;
}): Mailer {
  const { repository, box, logger } = deps;
  const transport: Transporter | undefined = deps.smtpUrl
    ? nodemailer.createTransport(deps.smtpUrl, { from: deps.from })
    : undefined;
  const devMailbox = !transport && !deps.isProduction;
  let wake: (() => void) | undefined;

  async function deliver(mail: Mail): Promise<void> {
    if (transport) {
      await transport.sendMail({ from: deps.from, to: mail.to, subject: mail.subject, text: mail.text });
    } else if (devMailbox) {
      logger.info({ event: 'mail', mailbox: 'development', from: deps.from, to: mail.to, subject: mail.subject, text: mail.text }, 'development mailbox: a message that would have been sent');
    } else {
      throw new Error('SMTP_URL is not set');
    }
  }

  /** Sends what is due; resolves how many messages it claimed. */
  async function drainOnce(): Promise<number> {
    const claimed = await repository.claimMail(BATCH, LEASE_SECONDS);
    for (const row of claimed) {
      try {
        await deliver({ to: row.recipient, subject: row.subject, text: box.open(row.body, row.recipient) });
        await repository.mailSent(row.id);
        logger.info({ event: 'mail', outcome: 'sent', attempts: row.attempts }, 'mail sent');
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (row.attempts >= MAX_ATTEMPTS) {
          await repository.mailSent(row.id);
          logger.error({ event: 'mail', outcome: 'given_up', attempts: row.attempts, error: message }, 'mail could not be sent; given up');
        } else {
          const retryIn = Math.min(MAX_BACKOFF_SECONDS, 2 ** (row.attempts - 1));
          await repository.mailFailed(row.id, message, retryIn);
          logger.warn({ event: 'mail', outcome: 'failed', attempts: row.attempts, retryInSeconds: retryIn, error: message }, 'mail delivery failed; will retry');
        }
      }
    }
    return claimed.length;
  }

  return {
    canSend: transport !== undefined || devMailbox,

    async send(mail) {
      await repository.enqueueMail({ recipient: mail.to, subject: mail.subject, body: box.seal(mail.text, mail.to) });
      wake?.();
    },

    start() {
      // A node that cannot send leaves the outbox to those that can.
      if (!transport && !devMailbox) return async () => undefined;
      let stopped = false;
      let timer: NodeJS.Timeout | undefined;
      let running: Promise<void> = Promise.resolve();
      const loop = async () => {
        while (!stopped) {
          try {
            // A full batch means more may be due: go on at once.
            if ((await drainOnce()) === BATCH) continue;
          } catch (err) {
            logger.warn({ err, event: 'mail' }, 'mail outbox unavailable; will retry');
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
            timer = setTimeout(resolve, POLL_MS);
            timer.unref();
          });
          clearTimeout(timer);
          wake = undefined;
        }
      };
      running = loop();
      return async () => {
        stopped = true;
        wake?.();
        await running;
        transport?.close();
      };
    },
  };
}
