import { DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD, APP_PIPE } from '@nestjs/core';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import { CacheModule } from '@app/cache';
import { UsersApiConfig } from '@app/config';
import { DatabaseModule } from '@app/database';
import { InboxRecord } from '@app/inbox';
import { OutboxMessage, OutboxModule } from '@app/outbox';
import { isOperationsPath } from '@app/telemetry';
import { createValidationPipe } from './common/validation';
import { DocsController } from './docs/docs.controller';
import { HealthController } from './health/health.controller';
import { Initial1764000000000 } from './migrations/1764000000000-initial';
import { OutboxParking1764100000000 } from './migrations/1764100000000-outbox-parking';
import { Videos1764200000000 } from './migrations/1764200000000-videos';
import { Posts1764300000000 } from './migrations/1764300000000-posts';
import { Sessions1764400000000 } from './migrations/1764400000000-sessions';
import { VideoOwners1764500000000 } from './migrations/1764500000000-video-owners';
import { PostsModule } from './posts/posts.module';
import { SCHEMA } from './schema';
import { SessionsModule } from './sessions/sessions.module';
import { User } from './users/user.entity';
import { UsersModule } from './users/users.module';
import { VideosModule } from './videos/videos.module';

@Module({})
export class AppModule {
  static register(config: UsersApiConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        DatabaseModule.forApp({
          schema: SCHEMA,
          entities: [User, OutboxMessage, InboxRecord],
          migrations: [
            Initial1764000000000,
            OutboxParking1764100000000,
            Videos1764200000000,
            Posts1764300000000,
            Sessions1764400000000,
            VideoOwners1764500000000,
          ],
          applicationName: 'users-api',
        }),
        OutboxModule.forRoot({ schema: SCHEMA }),
        // The post cache: reads fall back to the database when Redis is away (readiness says degraded).
        CacheModule.forApp({ name: 'users-api', required: false }),
        ThrottlerModule.forRoot({
          throttlers: [{ name: 'default', ttl: 60_000, limit: config.RATE_LIMIT_PER_MINUTE }],
          // Probes and scrapes are not clients: a load balancer's health checks must not eat a client's budget.
          skipIf: (context) => isOperationsPath(context.switchToHttp().getRequest<{ path?: string }>().path),
        }),
        SessionsModule,
        UsersModule,
        VideosModule,
        PostsModule,
      ],
      controllers: [HealthController, DocsController],
      providers: [
        { provide: APP_GUARD, useClass: ThrottlerGuard },
        { provide: APP_PIPE, useFactory: createValidationPipe },
      ],
    };
  }
}
