export * from './outbox-message.entity';
export * from './outbox.writer';
export * from './outbox.repository';
export * from './outbox.relay';
export * from './outbox.module';
export * from './outbox.observability';
