export * from './contributor';
export * from './consumer-servers';
export * from './runtime-metrics';
export * from './health.controller';
export * from './runtime.module';
export * from './start-app';
export * from './logging';
export * from './http-boundary';
