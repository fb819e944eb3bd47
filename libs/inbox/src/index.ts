export * from './inbox-busy.error';
export * from './transactional-inbox';
export * from './bounded-query';
export * from './claim-table';
export * from './held-claim';
export * from './lease-clock';
export * from './claim-inbox';
