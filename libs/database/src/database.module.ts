import { DynamicModule, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, DatabaseConfig } from '@app/config';
import { AppDatabaseOptions, dataSourceOptions, openAppDatabase } from './database';

@Module({})
export class DatabaseModule {
  /** TypeORM for one app: database created if missing, migrations applied before the app takes traffic. */
  static forApp(options: Omit<AppDatabaseOptions, 'url' | 'poolSize'>): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          inject: [APP_CONFIG],
          useFactory: (config: DatabaseConfig) =>
            dataSourceOptions({ ...options, url: config.DATABASE_URL, poolSize: config.DATABASE_POOL_SIZE }),
          dataSourceFactory: async (dsOptions) => {
            const resolved = dsOptions as ReturnType<typeof dataSourceOptions> & { url: string };
            return openAppDatabase({
              ...options,
              url: resolved.url,
              poolSize: (resolved.extra as { max: number }).max,
            });
          },
        }),
      ],
      exports: [TypeOrmModule],
    };
  }
}

export { DataSource };
