import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { EventType, PayloadOf } from '@app/contracts';
import { PublishOptions, toRecord } from '@app/messaging';
import { OutboxMessage } from './outbox-message.entity';

/**
 * Adds events to the outbox inside the caller's transaction: they commit or roll back with the business rows,
 * and no event is ever published for a change that did not happen.
 */
@Injectable()
export class OutboxWriter {
  async add<T extends EventType>(
    transaction: EntityManager,
    type: T,
    data: PayloadOf<T>,
    options: PublishOptions,
  ): Promise<string> {
    const record = toRecord(type, data, options);
    const eventId = record.headers.ce_id;
    await transaction.insert(OutboxMessage, {
      eventId,
      eventType: type,
      topic: record.topic,
      messageKey: record.key,
      value: record.value,
      headers: record.headers,
    });
    return eventId;
  }
}
