import { describe, expect, it } from 'vitest';
import { rotationStep, type RotationInput } from './refresh-rotation.js';
import type { PresentedToken } from './sessions.repository.js';

const now = new Date('2026-12-06T12:00:00Z');
const later = (ms: number) => new Date(now.getTime() + ms);
const input: RotationInput = { now, childHash: 'c'.repeat(64), refreshTtlMs: 3_600_000, ip: '203.0.113.7' };
const live: PresentedToken = {
  sessionId: 's',
  userId: 'u',
  role: 'user',
  absoluteExpiresAt: later(86_400_000),
  sessionRevoked: false,
  expiresAt: later(3_600_000),
  retiredAt: null,
  graceUsedAt: null,
};

describe('[AUTH-6] one use of a refresh token', () => {
  it('retires a live token and hands out its child, recording the address', () => {
    expect(rotationStep(live, input)).toEqual({ kind: 'rotate', use: 'retire', childHash: input.childHash, childExpiresAt: later(3_600_000), ip: '203.0.113.7' });
    expect(rotationStep(live, { ...input, ip: undefined })).toMatchObject({ kind: 'rotate', ip: null });
  });

  it('never lets the child outlive its session', () => {
    expect(rotationStep({ ...live, absoluteExpiresAt: later(60_000) }, input)).toMatchObject({ kind: 'rotate', childExpiresAt: later(60_000) });
  });

  it('refuses an unknown token, a revoked session, and either expiry', () => {
    expect(rotationStep(undefined, input)).toEqual({ kind: 'refuse' });
    expect(rotationStep({ ...live, sessionRevoked: true }, input)).toEqual({ kind: 'refuse' });
    expect(rotationStep({ ...live, absoluteExpiresAt: now }, input)).toEqual({ kind: 'refuse' });
    expect(rotationStep({ ...live, expiresAt: now }, input)).toEqual({ kind: 'refuse' });
  });

  it('gives a retired token one sibling within the grace, then treats it as a replay', () => {
    const retired = { ...live, retiredAt: later(-1_000) };
    expect(rotationStep(retired, input, 5_000)).toMatchObject({ kind: 'rotate', use: 'grace' });
    expect(rotationStep({ ...retired, graceUsedAt: later(-500) }, input, 5_000)).toEqual({ kind: 'revoke' });
    expect(rotationStep({ ...live, retiredAt: later(-5_001) }, input, 5_000)).toEqual({ kind: 'revoke' });
  });

  it('refuses a retired token of a revoked session rather than revoking it again', () => {
    expect(rotationStep({ ...live, retiredAt: later(-60_000), sessionRevoked: true }, input)).toEqual({ kind: 'refuse' });
  });
});
