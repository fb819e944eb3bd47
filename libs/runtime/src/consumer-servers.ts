import { Injectable } from '@nestjs/common';
import type { KafkaEventServer } from '@app/messaging';

/** The app's Kafka consumer servers (one per consumer class), for health and metrics. */
@Injectable()
export class ConsumerServers {
  private readonly servers: KafkaEventServer[] = [];

  add(server: KafkaEventServer): void {
    this.servers.push(server);
  }

  all(): readonly KafkaEventServer[] {
    return this.servers;
  }
}
