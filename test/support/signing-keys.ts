import { generateKeyPairSync } from 'node:crypto';

/** A JWK Set with one new P-256 private key, as AUTH_SIGNING_KEYS takes it: what a deployment's secret holds. */
export function newSigningKeySet(kid = 'test-key'): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return JSON.stringify({ keys: [{ ...privateKey.export({ format: 'jwk' }), kid }] });
}
