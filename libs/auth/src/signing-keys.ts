import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, JSONWebKeySet, JWK, SignJWT } from 'jose';
import { ACCESS_TOKEN_AUDIENCE, Identity } from './identity';

type PrivateKey = Awaited<ReturnType<typeof importJWK>>;

/** A private JWK as AUTH_SIGNING_KEYS holds it. */
export interface SigningJwk extends JWK {
  kid: string;
  d: string;
}

/**
 * The keys access tokens are signed with: the first signs, all are published (a key put second during a rotation
 * still verifies what it signed). The public JWKS carries only the public parts.
 */
export class SigningKeys {
  private constructor(
    private readonly signer: { kid: string; key: PrivateKey },
    readonly jwks: JSONWebKeySet,
    readonly generated: boolean,
  ) {}

  static async fromJwks(keys: readonly SigningJwk[]): Promise<SigningKeys> {
    const [first] = keys;
    const key = await importJWK({ ...first, alg: 'ES256' }, 'ES256');
    const publicKeys = keys.map(({ d: _private, ...rest }) => ({ ...rest, alg: 'ES256', use: 'sig' }));
    return new SigningKeys({ kid: first.kid, key }, { keys: publicKeys }, false);
  }

  /** A key made now, for development: tokens it signs die with the process. */
  static async generate(): Promise<SigningKeys> {
    const keys = await SigningKeys.newJwk();
    const made = await SigningKeys.fromJwks([keys]);
    return new SigningKeys(made.signer, made.jwks, true);
  }

  /** A new private key as AUTH_SIGNING_KEYS takes it (`npm run auth:keys`). */
  static async newJwk(): Promise<SigningJwk> {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = await exportJWK(privateKey);
    return { ...jwk, kid: `${new Date().toISOString().slice(0, 10)}-${randomUUID().slice(0, 8)}` } as SigningJwk;
  }

  get kid(): string {
    return this.signer.kid;
  }

  sign(identity: Identity, issuer: string, ttlSeconds: number): Promise<string> {
    return new SignJWT({ role: identity.role, sid: identity.sessionId })
      .setProtectedHeader({ alg: 'ES256', kid: this.signer.kid, typ: 'at+jwt' })
      .setSubject(identity.userId)
      .setIssuer(issuer)
      .setAudience(ACCESS_TOKEN_AUDIENCE)
      .setIssuedAt()
      .setJti(randomUUID())
      .setExpirationTime(`${ttlSeconds}s`)
      .sign(this.signer.key);
  }
}
