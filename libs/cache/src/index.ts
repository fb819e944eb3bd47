export * from './cache.module';
export * from './post-cache';
export * from './redis';
export * from './redis-errors';
export * from './redis.health';
