/**
 * Keys derived from SECRET_KEY for account security (AUTH-14, AUTH-16): each
 * use has its own HKDF label, so a key is never used for two purposes and a
 * leak of one derived key reveals nothing of the others or of the signing
 * key of access tokens. Rotating SECRET_KEY makes stored TOTP secrets,
 * recovery codes and queued mail unreadable (two-factor must then be set up
 * again).
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';

const VERSION = 'v1';

function deriveKey(secretKey: string, label: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secretKey, 'utf8'), Buffer.alloc(0), `sam:${label}`, 32));
}

export interface SecretBox {
  /** AES-256-GCM with a random 96-bit nonce; `context` (a user id, say) is authenticated, so a sealed value cannot move to another row. */
  seal(plain: string, context: string): string;
  /** Throws when the value was altered, sealed for another context or under another key. */
  open(sealed: string, context: string): string;
}

export function createSecretBox(secretKey: string, label: string): SecretBox {
  const key = deriveKey(secretKey, label);
  return {
    seal(plain, context) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return [VERSION, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
    },
    open(sealed, context) {
      const [version, iv, tag, body] = sealed.split('.');
      if (version !== VERSION || iv === undefined || tag === undefined || body === undefined) throw new Error('not a sealed value');
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
    },
  };
}

/**
 * A keyed hash (HMAC-SHA-256, hex) for short secrets such as recovery codes:
 * unlike a plain SHA-256, a copy of the database alone is not enough to try
 * every code offline.
 */
export function createKeyedHash(secretKey: string, label: string): (value: string) => string {
  const key = deriveKey(secretKey, label);
  return (value) => createHmac('sha256', key).update(value, 'utf8').digest('hex');
}
