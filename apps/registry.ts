import type { AppDefinition } from '@app/runtime';
import { cacheInvalidatorApp } from './cache-invalidator/src/app';
import { consoleApp } from './console/src/app';
import { emailServiceApp } from './email-service/src/app';
import { notifierApp } from './notifier/src/app';
import { usersApiApp } from './users-api/src/app';
import { videoProcessorApp } from './video-processor/src/app';

/**
 * Every app of the system, each as its definition (name, config schema, module and, through the module, its
 * consumers). The AsyncAPI document is generated from this list, and test/app-registry.spec.ts checks every other
 * list of apps against it (nest-cli.json, scripts/apps.js, libs/config, test/support/system.ts, compose, Kubernetes).
 */
export const APPS: readonly AppDefinition[] = [
  usersApiApp,
  emailServiceApp,
  videoProcessorApp,
  cacheInvalidatorApp,
  notifierApp,
  consoleApp,
];
