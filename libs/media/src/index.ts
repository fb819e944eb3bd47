export * from './media-storage';
export * from './local-media-storage';
export * from './media.module';
