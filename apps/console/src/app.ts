import { Module } from '@nestjs/common';
import { consoleConfigSchema } from '@app/config';
import { defineApp } from '@app/runtime';
import { DeadLettersController } from './dead-letters/dead-letters.controller';
import { PageController } from './page/page.controller';
import { SystemController } from './system/system.controller';
import { SystemMonitor } from './system/system-monitor';

@Module({
  controllers: [PageController, SystemController, DeadLettersController],
  providers: [SystemMonitor],
})
class AppModule {}

/**
 * console: one page to try each scenario and watch the system (apps, topics, groups, dead letters) live. An app of
 * its own, with a Kafka principal of its own: it describes every group and reads and writes their dead-letter and
 * retry topics, rights the public API has no need of.
 */
export const consoleApp = defineApp({
  name: 'console',
  schema: consoleConfigSchema,
  module: () => ({ module: AppModule }),
  // The console is most wanted when the brokers are away: it serves, and says so, without them.
  kafkaRequiredForReady: false,
});
