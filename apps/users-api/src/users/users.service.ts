import { randomUUID } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import * as argon2 from 'argon2';
import { DataSource } from 'typeorm';
import { pgErrorOf, PgErrorCode } from '@app/database';
import { OutboxWriter } from '@app/outbox';
import { ConflictError, NotFoundError } from '../common/app-error';
import { User } from './user.entity';
import { AccountResponse, PublicUserResponse, RegisterUserBody, UserResponse } from './users.schemas';

/** OWASP's minimum argon2id parameters: 19 MiB, 2 iterations, 1 lane. */
export const ARGON2_OPTIONS = { type: argon2.argon2id, memoryCost: 19 * 1024, timeCost: 2, parallelism: 1 } as const;

export const SOURCE = 'users-api';

@Injectable()
export class UsersService {
  private readonly logger = new Logger(UsersService.name);

  constructor(
    private readonly dataSource: DataSource,
    private readonly outbox: OutboxWriter,
  ) {}

  /**
   * Creates the user and its events in one transaction. The response never waits on Kafka or SMTP:
   * the relay publishes the events, the email-service sends the welcome email.
   */
  async register(input: RegisterUserBody, correlationId: string): Promise<UserResponse> {
    const passwordHash = await argon2.hash(input.password, ARGON2_OPTIONS);
    const id = randomUUID();
    try {
      const user = await this.dataSource.transaction(async (tx) => {
        await tx.insert(User, { id, email: input.email, username: input.username, passwordHash });
        const created = await tx.findOneByOrFail(User, { id });
        const options = { key: id, source: SOURCE, correlationId, subject: `user/${id}` };
        await this.outbox.add(
          tx,
          'user.registered.v1',
          {
            userId: id,
            email: created.email,
            username: created.username,
            registeredAt: created.createdAt.toISOString(),
          },
          options,
        );
        await this.outbox.add(
          tx,
          'email.requested.v1',
          { to: created.email, template: 'welcome', data: { username: created.username }, userId: id },
          options,
        );
        return created;
      });
      this.logger.log(`registered user ${user.id}`);
      return toResponse(user);
    } catch (error) {
      throw this.mapConflict(error);
    }
  }

  /** The public profile: id, username, createdAt. The email address stays with its owner. */
  async findById(id: string): Promise<PublicUserResponse> {
    const user = await this.dataSource.getRepository(User).findOneBy({ id });
    if (!user) throw new NotFoundError('USER.NOT_FOUND', `No user with id ${id}`);
    const { email: _email, ...profile } = toResponse(user);
    return profile;
  }

  /** The signed-in user's own account. */
  async findOwn(id: string): Promise<AccountResponse> {
    const user = await this.dataSource.getRepository(User).findOneBy({ id });
    if (!user) throw new NotFoundError('USER.NOT_FOUND', 'This account no longer exists');
    return { ...toResponse(user), role: user.role };
  }

  private mapConflict(error: unknown): unknown {
    const pg = pgErrorOf(error);
    if (pg.code !== PgErrorCode.UniqueViolation) return error;
    if (pg.constraint === 'users_email_key') {
      return new ConflictError('USER.EMAIL_TAKEN', 'A user with this email already exists', [
        { field: 'email', message: 'is already registered' },
      ]);
    }
    if (pg.constraint === 'users_username_lower_key') {
      return new ConflictError('USER.USERNAME_TAKEN', 'This username is taken', [
        { field: 'username', message: 'is already taken' },
      ]);
    }
    return error;
  }
}

function toResponse(user: User): UserResponse {
  return { id: user.id, email: user.email, username: user.username, createdAt: user.createdAt.toISOString() };
}
