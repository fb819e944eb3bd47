import { DynamicModule, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, DatabaseConfig } from '@app/config';
import { AppDatabaseOptions, dataSourceOptions, openAppDatabase } from './database';

@Module({})
export class DatabaseModule {
  /** TypeORM for one app: database created if missing, migrations applied before the app takes traffic. */
  static forApp(
    options: Omit<AppDatabaseOptions, 'url' | 'poolSize' | 'idleTransactionTimeoutMs' | 'statementTimeoutMs'>,
  ): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          inject: [APP_CONFIG],
          useFactory: (config: DatabaseConfig) =>
            dataSourceOptions({
              ...options,
              url: config.DATABASE_URL,
              poolSize: config.DATABASE_POOL_SIZE,
              idleTransactionTimeoutMs: config.DATABASE_IDLE_TRANSACTION_TIMEOUT_MS,
              statementTimeoutMs: config.DATABASE_STATEMENT_TIMEOUT_MS,
            }),
          dataSourceFactory: async (dsOptions) => {
            const resolved = dsOptions as ReturnType<typeof dataSourceOptions> & { url: string };
            const extra = resolved.extra as {
              max: number;
              idle_in_transaction_session_timeout: number;
              statement_timeout: number;
            };
            return openAppDatabase({
              ...options,
              url: resolved.url,
              poolSize: extra.max,
              idleTransactionTimeoutMs: extra.idle_in_transaction_session_timeout,
              statementTimeoutMs: extra.statement_timeout,
            });
          },
        }),
      ],
      exports: [TypeOrmModule],
    };
  }
}

export { DataSource };
