import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Device and account tokens: 128 random bits shown once, in the hosted service's UUID-like shape
 * (8-4-4-4-12 hex). Only a SHA-256 digest is stored; lookups go by digest and the final comparison
 * is constant-time, so neither the database nor timing reveals a token.
 */
export function generateToken(): string {
  const hex = randomBytes(16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function sameDigest(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Object ids in the hosted service's 24-hex-digit shape. */
export function generateId(): string {
  return randomBytes(12).toString('hex');
}
