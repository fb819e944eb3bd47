import { AppError } from '@app/runtime';

/**
 * A refused credential: 401 when there is none or it does not hold (missing, malformed, tampered, expired, signed by
 * a key that is not ours), 403 when it holds but does not allow this. Answered in the one error shape, a 401 with
 * `WWW-Authenticate: Bearer`.
 */
export class AuthError extends AppError {
  override readonly name = 'AuthError';
  constructor(
    readonly status: 401 | 403,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }

  static missing(): AuthError {
    return new AuthError(401, 'AUTH.TOKEN_MISSING', 'Sign in first: send Authorization: Bearer <accessToken>');
  }

  static invalid(reason: string): AuthError {
    return new AuthError(401, 'AUTH.TOKEN_INVALID', `The access token is not valid: ${reason}`);
  }

  static expired(): AuthError {
    return new AuthError(
      401,
      'AUTH.TOKEN_EXPIRED',
      'The access token has expired: refresh it (POST /sessions/refresh)',
    );
  }

  static forbidden(needed: string): AuthError {
    return new AuthError(403, 'AUTH.FORBIDDEN', `This needs the ${needed} role`);
  }
}
