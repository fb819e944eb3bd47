export * from './topics';
export * from './envelope';
export * from './registry';
export * from './text';
export * from './events/user-registered.v1';
export * from './events/email-requested.v1';
export * from './events/video.v1';
export * from './events/post.v1';
