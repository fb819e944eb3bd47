import { createLocalJWKSet, createRemoteJWKSet, errors, JSONWebKeySet, jwtVerify } from 'jose';
import { AuthError } from './auth-errors';
import { ACCESS_TOKEN_AUDIENCE, Role, ROLES, VerifiedIdentity } from './identity';

type KeyLookup = Parameters<typeof jwtVerify>[1];

/**
 * Verifies access tokens without a database call: the signature against users-api's public keys (ES256 only), the
 * issuer, the audience and the expiry. A token that fails any of them is a 401 naming why.
 */
export class TokenVerifier {
  private constructor(
    private readonly keys: KeyLookup,
    private readonly issuer: string,
  ) {}

  /** Keys fetched from a JWKS URL (cached; an unknown `kid` fetches them again, at most every 30 s). */
  static remote(jwksUrl: string, issuer: string): TokenVerifier {
    return new TokenVerifier(createRemoteJWKSet(new URL(jwksUrl), { cooldownDuration: 30_000 }), issuer);
  }

  /** Keys held in this process (users-api verifies its own tokens). */
  static local(jwks: JSONWebKeySet, issuer: string): TokenVerifier {
    return new TokenVerifier(createLocalJWKSet(jwks), issuer);
  }

  async verify(token: string): Promise<VerifiedIdentity> {
    try {
      const { payload } = await jwtVerify(token, this.keys, {
        algorithms: ['ES256'],
        issuer: this.issuer,
        audience: ACCESS_TOKEN_AUDIENCE,
        requiredClaims: ['sub', 'exp', 'sid'],
      });
      const role = payload.role as Role;
      if (!ROLES.includes(role)) throw AuthError.invalid('no role');
      return { userId: payload.sub!, role, sessionId: String(payload.sid), expiresAt: new Date(payload.exp! * 1000) };
    } catch (error) {
      if (error instanceof AuthError) throw error;
      if (error instanceof errors.JWTExpired) throw AuthError.expired();
      if (error instanceof errors.JWKSNoMatchingKey) throw AuthError.invalid('signed by a key that is not ours');
      if (error instanceof errors.JWSSignatureVerificationFailed)
        throw AuthError.invalid('its signature does not hold');
      if (error instanceof errors.JWTClaimValidationFailed)
        throw AuthError.invalid(`its ${error.claim} claim does not hold`);
      if (error instanceof errors.JOSEError) throw AuthError.invalid(error.code.replace(/^ERR_/, '').toLowerCase());
      throw error;
    }
  }
}
