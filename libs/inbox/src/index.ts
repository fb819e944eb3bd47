export * from './inbox-busy.error';
export * from './transactional-inbox';
export * from './claim-inbox';
