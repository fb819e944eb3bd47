export * from './config';
export * from './fields';
export * from './apps';
export * from './config.module';
