import { DynamicModule, Global, Module } from '@nestjs/common';
import { APP_CONFIG, MediaConfig } from '@app/config';
import { LocalMediaStorage } from './local-media-storage';
import { MEDIA_STORAGE } from './media-storage';

/** Media storage for the app, from MEDIA_DIR. */
@Global()
@Module({})
export class MediaModule {
  static forApp(): DynamicModule {
    return {
      module: MediaModule,
      providers: [
        {
          provide: MEDIA_STORAGE,
          inject: [APP_CONFIG],
          useFactory: (config: MediaConfig) => new LocalMediaStorage(config.MEDIA_DIR),
        },
      ],
      exports: [MEDIA_STORAGE],
    };
  }
}
