import { Injectable, OnModuleDestroy } from '@nestjs/common';
import type { KafkaEventServer } from '@app/messaging';

/**
 * The app's Kafka consumer servers (one per consumer class), for health, metrics and shutdown.
 *
 * Nest closes microservices only after every module's destroy hooks ran, and some of those release what handlers
 * still use (the mailer closes its SMTP pool in its own): in-flight messages would fail over to the retry topic.
 * Destroy hooks run from the root down and global modules last, and this module sits right under the root, so
 * the consumers drain here, first. Nest's own close of them later finds nothing left to do.
 */
@Injectable()
export class ConsumerServers implements OnModuleDestroy {
  private readonly servers: KafkaEventServer[] = [];

  add(server: KafkaEventServer): void {
    this.servers.push(server);
  }

  all(): readonly KafkaEventServer[] {
    return this.servers;
  }

  async onModuleDestroy(): Promise<void> {
    await Promise.all(this.servers.map((server) => server.close()));
  }
}
