import { DynamicModule, Module } from '@nestjs/common';
import { AppConfigModule, IdleAppConfig } from '@app/config';
import { MessagingModule } from '@app/messaging';

@Module({})
export class AppModule {
  static register(config: IdleAppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [AppConfigModule.forRoot(config), MessagingModule.forRoot({ clientId: 'video-processor' })],
    };
  }
}
