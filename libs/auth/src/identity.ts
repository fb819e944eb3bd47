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

/** An identity as a verified access token gives it: with the moment the token stops being valid. */
export interface VerifiedIdentity extends Identity {
  expiresAt: Date;
}

/** The `aud` of every access token: the apps of this system. */
export const ACCESS_TOKEN_AUDIENCE = 'kafka-nest';
