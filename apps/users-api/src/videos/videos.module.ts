import { Module } from '@nestjs/common';
import { MediaModule } from '@app/media';
import { VideoEventsConsumer } from './video-events.consumer';
import { VideosController } from './videos.controller';
import { VideosService } from './videos.service';

@Module({
  imports: [MediaModule.forApp()],
  controllers: [VideosController, VideoEventsConsumer],
  providers: [VideosService],
})
export class VideosModule {}
