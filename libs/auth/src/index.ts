export { AuthError } from './auth-errors';
export { AuthModule } from './auth.module';
export {
  Authenticated,
  AuthenticatedByCookie,
  BearerAuthGuard,
  bearerTokenOf,
  CurrentUser,
  OptionallyAuthenticated,
  OptionalUser,
  TOKEN_VERIFIER,
} from './bearer-auth.guard';
export { ACCESS_TOKEN_AUDIENCE, ROLES } from './identity';
export type { Identity, Role, VerifiedIdentity } from './identity';
export { clearedSessionCookie, cookieTokenOf, cookieValueOf, sessionCookie } from './session-cookie';
export type { SessionCookieOptions } from './session-cookie';
export { SigningKeys } from './signing-keys';
export type { SigningJwk } from './signing-keys';
export { TokenVerifier } from './token-verifier';
