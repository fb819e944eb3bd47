import { Module } from '@nestjs/common';
import { AuthModule } from '@app/auth';
import { consoleConfigSchema } from '@app/config';
import { defineApp } from '@app/runtime';
import { DeadLettersController } from './dead-letters/dead-letters.controller';
import { PageController } from './page/page.controller';
import { SessionController } from './session/session.controller';
import { SystemController } from './system/system.controller';
import { SystemMonitor } from './system/system-monitor';

@Module({
  controllers: [PageController, SessionController, SystemController, DeadLettersController],
  providers: [SystemMonitor],
})
class AppModule {}

/**
 * console: one page to try each scenario and watch the system (apps, topics, groups, dead letters) live. An app of
 * its own, with a Kafka principal of its own: it describes every group and reads and writes their dead-letter and
 * retry topics, rights the public API has no need of. Its page signs in at users-api like any client; what it shows
 * of the system needs the admin role.
 */
export const consoleApp = defineApp({
  name: 'console',
  schema: consoleConfigSchema,
  // Access tokens are verified here against users-api's public keys (AUTH_JWKS_URL): the admin role opens the system
  // view and the dead-letter tools.
  module: (config) => ({ module: AppModule, imports: [AuthModule.remote(config)] }),
  // The console is most wanted when the brokers are away: it serves, and says so, without them.
  kafkaRequiredForReady: false,
});
