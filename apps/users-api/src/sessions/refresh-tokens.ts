import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, UsersApiConfig } from '@app/config';
import { AuthError } from '@app/auth';
import { SCHEMA } from '../schema';

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/** A refresh token is `<id>.<secret>`: the id finds the row, the secret's SHA-256 is all the row holds. */
function parse(token: string): { id: string; secret: string } | undefined {
  const match = /^([0-9a-f-]{36})\.([A-Za-z0-9_-]{43})$/.exec(token);
  return match ? { id: match[1], secret: match[2] } : undefined;
}

const refused = (code: string, message: string) => new AuthError(401, code, message);

/**
 * Refresh tokens: stored hashed, single-use, in families (one per sign-in). Using one ends it and issues the next of
 * its family; using one again — a copy in a thief's hands, or the owner's after the thief's — revokes the whole
 * family, so that both must sign in again (OWASP ASVS V3).
 */
@Injectable()
export class RefreshTokens {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: UsersApiConfig,
  ) {}

  async issue(tx: EntityManager, userId: string, familyId: string): Promise<string> {
    const id = randomUUID();
    const secret = randomBytes(32).toString('base64url');
    await tx.query(
      `INSERT INTO "${SCHEMA}".refresh_tokens (id, family_id, user_id, token_hash, expires_at)
       VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))`,
      [id, familyId, userId, sha256(secret), this.config.AUTH_REFRESH_TOKEN_TTL_SECONDS],
    );
    return `${id}.${secret}`;
  }

  /** Ends `token` and issues the next of its family, or refuses it (a reuse revokes the family first). */
  async rotate(token: string): Promise<{ userId: string; familyId: string; refreshToken: string }> {
    const parsed = parse(token);
    if (!parsed) throw refused('AUTH.REFRESH_INVALID', 'This is not a refresh token this API gave out');
    let reused = false;
    const result = await this.dataSource.transaction(async (tx) => {
      const [row] = await tx.query<
        {
          family_id: string;
          user_id: string;
          token_hash: Buffer;
          used_at: Date | null;
          revoked_at: Date | null;
          expired: boolean;
        }[]
      >(
        `SELECT family_id, user_id, token_hash, used_at, revoked_at, expires_at <= now() AS expired
           FROM "${SCHEMA}".refresh_tokens WHERE id = $1 FOR UPDATE`,
        [parsed.id],
      );
      const hash = sha256(parsed.secret);
      if (!row || row.token_hash.length !== hash.length || !timingSafeEqual(row.token_hash, hash)) {
        throw refused('AUTH.REFRESH_INVALID', 'This is not a refresh token this API gave out');
      }
      if (row.revoked_at) throw refused('AUTH.REFRESH_REVOKED', 'This sign-in has ended: sign in again');
      if (row.used_at) {
        await this.revokeIn(tx, row.family_id);
        reused = true;
        return undefined;
      }
      if (row.expired) throw refused('AUTH.REFRESH_EXPIRED', 'The refresh token has expired: sign in again');
      await tx.query(`UPDATE "${SCHEMA}".refresh_tokens SET used_at = now() WHERE id = $1`, [parsed.id]);
      const refreshToken = await this.issue(tx, row.user_id, row.family_id);
      return { userId: row.user_id, familyId: row.family_id, refreshToken };
    });
    // Thrown once the revocation has committed.
    if (reused || !result) {
      throw refused(
        'AUTH.REFRESH_REUSED',
        'This refresh token was used before: the sign-in it belongs to has been ended everywhere; sign in again',
      );
    }
    return result;
  }

  /** Ends every token of a sign-in (signing out). */
  async revoke(familyId: string): Promise<void> {
    await this.revokeIn(this.dataSource.manager, familyId);
  }

  private async revokeIn(tx: EntityManager, familyId: string): Promise<void> {
    await tx.query(
      `UPDATE "${SCHEMA}".refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL`,
      [familyId],
    );
  }
}
