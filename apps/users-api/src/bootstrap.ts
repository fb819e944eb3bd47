import { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { logLevels, UsersApiConfig } from '@app/config';
import { AppModule } from './app.module';

/** Builds and starts users-api; returns the listening app. Shared by main.ts and the e2e tests. */
export async function startUsersApi(config: UsersApiConfig): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.register(config), {
    logger: logLevels(config.LOG_LEVEL),
  });
  app.useBodyParser('json', { limit: '16kb' });
  await app.listen(config.PORT, config.HOST);
  return app;
}
