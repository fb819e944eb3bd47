import { DynamicModule, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { ConsumerServers } from './consumer-servers';
import { RUNTIME_OPTIONS, RuntimeController, RuntimeOptions } from './health.controller';
import { RuntimeMetrics } from './runtime-metrics';

/** Health, readiness and metrics endpoints of every app; startApp imports it beside the app's own module. */
@Module({})
export class RuntimeModule {
  static forRoot(options: RuntimeOptions): DynamicModule {
    return {
      module: RuntimeModule,
      // The monitor logs when the cluster comes and goes; a line per failed probe request would only repeat it.
      imports: [DiscoveryModule, TerminusModule.forRoot({ logger: false })],
      controllers: [RuntimeController],
      providers: [{ provide: RUNTIME_OPTIONS, useValue: options }, ConsumerServers, RuntimeMetrics],
      exports: [ConsumerServers, RuntimeMetrics],
    };
  }
}
