import { randomBytes, randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import * as argon2 from 'argon2';
import { DataSource } from 'typeorm';
import { APP_CONFIG, UsersApiConfig } from '@app/config';
import { AuthError, Identity, Role, SigningKeys } from '@app/auth';
import { ARGON2_OPTIONS } from '../users/users.service';
import { normalizePassword } from '../users/password-policy';
import { SCHEMA } from '../schema';
import { RefreshTokens } from './refresh-tokens';
import { SessionResponse, SignInBody } from './sessions.schemas';
import { SIGNING_KEYS } from './signing-keys.provider';
import { SignInThrottle } from './sign-in-throttle';

const WRONG = () => new AuthError(401, 'AUTH.BAD_CREDENTIALS', 'The email or the password is wrong');

/**
 * Sign-in, refresh and sign-out. An unknown email costs what a wrong password costs (a dummy hash is verified) and is
 * answered the same, so that neither the answer nor its time tells whether an account exists.
 */
@Injectable()
export class SessionsService {
  private readonly logger = new Logger(SessionsService.name);
  private readonly dummyHash = argon2.hash(randomBytes(16).toString('hex'), ARGON2_OPTIONS);

  constructor(
    private readonly dataSource: DataSource,
    private readonly refreshTokens: RefreshTokens,
    private readonly throttle: SignInThrottle,
    @Inject(SIGNING_KEYS) private readonly keys: SigningKeys,
    @Inject(APP_CONFIG) private readonly config: UsersApiConfig,
  ) {}

  async signIn(input: SignInBody, client: string): Promise<SessionResponse> {
    await this.throttle.check(input.email, client);
    const [user] = await this.dataSource.query<{ id: string; role: Role; password_hash: string }[]>(
      `SELECT id, role, password_hash FROM "${SCHEMA}".users WHERE email = $1`,
      [input.email],
    );
    const password = normalizePassword(input.password);
    const hash = user?.password_hash ?? (await this.dummyHash);
    const matches = await argon2.verify(hash, password).catch(() => false);
    if (!user || !matches) {
      await this.throttle.failed(input.email, client);
      throw WRONG();
    }
    await this.throttle.succeeded(input.email);
    const familyId = randomUUID();
    const refreshToken = await this.dataSource.transaction((tx) => this.refreshTokens.issue(tx, user.id, familyId));
    this.logger.log(`user ${user.id} signed in (session ${familyId})`);
    return this.answer({ userId: user.id, role: user.role, sessionId: familyId }, refreshToken);
  }

  async refresh(token: string): Promise<SessionResponse> {
    const { userId, familyId, refreshToken } = await this.refreshTokens.rotate(token);
    // The role as it is now: a grant or a revocation reaches the next access token.
    const [user] = await this.dataSource.query<
      {
        role: Role;
      }[]
    >(`SELECT role FROM "${SCHEMA}".users WHERE id = $1`, [userId]);
    if (!user) throw new AuthError(401, 'AUTH.REFRESH_REVOKED', 'This account no longer exists');
    return this.answer({ userId, role: user.role, sessionId: familyId }, refreshToken);
  }

  async signOut(identity: Identity): Promise<void> {
    await this.refreshTokens.revoke(identity.sessionId);
    this.logger.log(`user ${identity.userId} signed out (session ${identity.sessionId})`);
  }

  private async answer(identity: Identity, refreshToken: string): Promise<SessionResponse> {
    const ttl = this.config.AUTH_ACCESS_TOKEN_TTL_SECONDS;
    const accessToken = await this.keys.sign(identity, this.config.AUTH_ISSUER, ttl);
    return { accessToken, refreshToken, tokenType: 'Bearer', expiresIn: ttl };
  }
}
