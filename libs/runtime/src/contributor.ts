import { SetMetadata } from '@nestjs/common';
import type { Registry } from 'prom-client';

export const RUNTIME_CONTRIBUTOR = Symbol('runtime:contributor');

/** One entry of `/health/ready`: `down` turns the answer 503, `degraded` keeps it 200 and says what is wrong. */
export type ReadinessReport = { status: 'up' | 'degraded' | 'down' } & Record<string, unknown>;

/** A provider that adds an entry to `/health/ready`, under its key. */
export interface ReadinessContributor {
  readonly readinessKey: string;
  readiness(): Promise<ReadinessReport>;
}

/** A provider that adds metrics to the app's registry (collected when `/metrics` is scraped). */
export interface MetricsContributor {
  registerMetrics(registry: Registry): void;
}

/**
 * Marks a provider as contributing to health and/or metrics: the runtime finds it at boot and uses whichever of
 * ReadinessContributor and MetricsContributor it implements. How a lib (the outbox) reports on itself without the
 * app wiring it.
 */
export const RuntimeContributor = (): ClassDecorator => SetMetadata(RUNTIME_CONTRIBUTOR, true);

/** A provider instance whose class carries @RuntimeContributor (factory providers included: the class, not the factory). */
export function isContributor(instance: unknown): instance is object {
  return (
    typeof instance === 'object' &&
    instance !== null &&
    Reflect.getMetadata(RUNTIME_CONTRIBUTOR, instance.constructor) === true
  );
}

export function isReadinessContributor(value: unknown): value is ReadinessContributor {
  return typeof (value as Partial<ReadinessContributor>)?.readiness === 'function';
}

export function isMetricsContributor(value: unknown): value is MetricsContributor {
  return typeof (value as Partial<MetricsContributor>)?.registerMetrics === 'function';
}
