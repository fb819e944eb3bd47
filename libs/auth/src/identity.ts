/** What an access token says about whoever presents it. */
export type Role = 'user' | 'admin';

export const ROLES: readonly Role[] = ['user', 'admin'];

export interface Identity {
  /** The user's id (the token's `sub`). */
  userId: string;
  role: Role;
  /** The sign-in the token belongs to (its refresh-token family): signing out ends it. */
  sessionId: string;
}

/** An identity as verification found it: also when the token stops holding. */
export interface VerifiedIdentity extends Identity {
  /** The token's `exp`: whatever carries the token (a cookie, an open stream) must not outlast it. */
  expiresAt: Date;
}

/** The `aud` of every access token: the apps of this system. */
export const ACCESS_TOKEN_AUDIENCE = 'kafka-nest';
