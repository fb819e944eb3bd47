import { z } from 'zod';
import type { GroupKind } from './kafka-event.server';
import type { StartPositions } from './start-positions';

// @nestjs/microservices keys: the pattern a method handles, and the transport whose server registers it.
const PATTERN_METADATA = 'microservices:pattern';
const TRANSPORT_METADATA = 'microservices:transport';
const CONSUMER_OPTIONS = Symbol('event-consumer:options');

/** How a consumer class's events are taken: `transactional` and `claim` dedupe by event id, `none` does not. */
export type InboxMode = 'transactional' | 'claim' | 'none';

/**
 * What a consumer class needs from the runtime. Every `@HandleEvent` method of the class runs in one consumer group
 * with these settings; an app may have several consumer classes, each in its own group.
 */
export interface EventConsumerOptions<Config = never> {
  /** The consumer group's name, or a function of the app's config. Default: the app's name. */
  group?: string | ((config: Config) => string);
  /**
   * `durable` (default): a named group shared by the replicas, from the earliest offset on its first start, with
   * retry and dead-letter topics. `per-instance`: a group of this process alone, from the latest offset, no retry
   * or dead-letter topics, deleted on a clean shutdown — every replica sees every event.
   */
  kind?: GroupKind;
  /**
   * `transactional` (default for durable groups): the inbox row and the handler's writes (`context.transaction`)
   * commit together. `claim`: for long work — a leased claim commits at once and the handler runs with no
   * transaction open. `none` (the only mode of per-instance groups): for naturally idempotent handlers.
   */
  inbox?: InboxMode;
  /**
   * For `claim`: the schema of the app's `claims` table and the lease (or a function of the config giving it),
   * renewed every third of it while a job runs.
   */
  claim?: { schema: string; leaseMs: number | ((config: Config) => number) };
  /** Partitions handled in parallel by one replica. Default: CONSUMER_CONCURRENCY. */
  concurrency?: number;
  /** Where a durable group with no committed offset starts. Default `earliest`; per-instance groups start at latest. */
  startFrom?: 'earliest' | 'latest';
  /**
   * A provider of the app (resolved from its container) that says where each partition starts on every join —
   * see StartPositions. For per-instance groups that must not skip what was written while they were away.
   */
  positions?: abstract new (...args: never[]) => StartPositions;
}

/** A consumer class's options after validation, with the group resolved against the app's config. */
export interface ResolvedConsumer {
  className: string;
  group: string;
  kind: GroupKind;
  inbox: InboxMode;
  claim?: { schema: string; leaseMs: number };
  concurrency?: number;
  startFrom: 'earliest' | 'latest';
  positions?: abstract new (...args: never[]) => StartPositions;
  /** The server of this class's group registers only this class's handlers. */
  transportId: symbol;
}

const groupName = z.string().regex(/^[A-Za-z0-9._-]{1,200}$/, { error: 'must be 1–200 of A-Z a-z 0-9 . _ -' });

const optionsSchema = z
  .object({
    group: groupName,
    kind: z.enum(['durable', 'per-instance']).default('durable'),
    inbox: z.enum(['transactional', 'claim', 'none']).optional(),
    claim: z
      .object({
        schema: z.string().regex(/^[a-z_][a-z0-9_]*$/, { error: 'must be a lower-case SQL identifier' }),
        leaseMs: z.number().int().min(1000).max(86_400_000),
      })
      .strict()
      .optional(),
    concurrency: z.number().int().min(1).max(64).optional(),
    startFrom: z.enum(['earliest', 'latest']).optional(),
    positions: z.custom((value) => typeof value === 'function', { error: 'must be a provider class' }).optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    const inbox = o.inbox ?? (o.kind === 'durable' ? 'transactional' : 'none');
    if (o.kind === 'per-instance' && inbox !== 'none') {
      ctx.addIssue({ code: 'custom', path: ['inbox'], message: "a per-instance group takes inbox 'none' only" });
    }
    if (o.kind === 'per-instance' && o.startFrom === 'earliest') {
      ctx.addIssue({
        code: 'custom',
        path: ['startFrom'],
        message: 'a per-instance group starts at the latest offset',
      });
    }
    if (inbox === 'claim' && !o.claim) {
      ctx.addIssue({ code: 'custom', path: ['claim'], message: "inbox 'claim' needs claim: { schema, leaseMs }" });
    }
    if (inbox !== 'claim' && o.claim) {
      ctx.addIssue({ code: 'custom', path: ['claim'], message: "claim options apply to inbox 'claim' only" });
    }
  });

/** Thrown at boot when a consumer class's options or handlers are wrong; names the class and every problem. */
export class ConsumerDeclarationError extends Error {
  override readonly name = 'ConsumerDeclarationError';
}

type Constructor = abstract new (...args: never[]) => unknown;

/** The class's own `@HandleEvent` methods. */
function handlerMethods(target: Constructor): ((...args: unknown[]) => unknown)[] {
  return handlersOf(target.prototype as object);
}

function handlersOf(prototype: object): ((...args: unknown[]) => unknown)[] {
  return Object.getOwnPropertyNames(prototype)
    .filter((key) => key !== 'constructor')
    .map((key) => Object.getOwnPropertyDescriptor(prototype, key)?.value as unknown)
    .filter((value): value is (...args: unknown[]) => unknown => typeof value === 'function')
    .filter((method) => Reflect.getMetadata(PATTERN_METADATA, method) !== undefined);
}

/** Names of `@HandleEvent` methods a class inherits: they cannot be routed to one class's server. */
function inheritedHandlers(target: Constructor): string[] {
  const names: string[] = [];
  for (let p = Object.getPrototypeOf(target.prototype) as object | null; p && p !== Object.prototype;) {
    names.push(...handlersOf(p).map((method) => method.name));
    p = Object.getPrototypeOf(p) as object | null;
  }
  return names;
}

/**
 * Declares a class of `@HandleEvent` methods as one consumer and what it needs from the runtime:
 *
 *     @EventConsumer<EmailServiceConfig>({ group: (config) => config.EMAIL_CONSUMER_GROUP, inbox: 'transactional' })
 *     @Controller()
 *     export class EmailRequestsConsumer { @HandleEvent('email.requested.v1') send(event, context) { … } }
 *
 * Options are checked when the app boots (startApp); a wrong combination stops the boot with the class named.
 */
export function EventConsumer<Config = never>(options: EventConsumerOptions<Config> = {}): ClassDecorator {
  return (target) => {
    const transportId = Symbol(`event-consumer:${target.name}`);
    // Method decorators ran first: route each handler of this class to this class's server only.
    for (const method of handlerMethods(target as unknown as Constructor)) {
      Reflect.defineMetadata(TRANSPORT_METADATA, transportId, method);
    }
    Reflect.defineMetadata(CONSUMER_OPTIONS, { options, transportId }, target);
  };
}

/**
 * The consumers of an app's controllers, validated: every class with handlers must be an `@EventConsumer`, its
 * options must hold together, and no two classes may share a group.
 */
export function resolveConsumers<Config>(classes: Constructor[], config: Config, appName: string): ResolvedConsumer[] {
  const resolved: ResolvedConsumer[] = [];
  for (const target of classes) {
    const inherited = inheritedHandlers(target);
    if (inherited.length > 0) {
      throw new ConsumerDeclarationError(
        `${target.name} inherits @HandleEvent methods (${inherited.join(', ')}): declare handlers on the consumer class itself, so they run in its group only`,
      );
    }
    const declared = Reflect.getMetadata(CONSUMER_OPTIONS, target) as
      { options: EventConsumerOptions<Config>; transportId: symbol } | undefined;
    if (!declared) {
      if (handlerMethods(target).length > 0) {
        throw new ConsumerDeclarationError(
          `${target.name} has @HandleEvent methods but no @EventConsumer(): declare its group and inbox`,
        );
      }
      continue;
    }
    const { group, claim, ...rest } = declared.options;
    const parsed = optionsSchema.safeParse({
      ...rest,
      ...(claim
        ? { claim: { ...claim, leaseMs: typeof claim.leaseMs === 'function' ? claim.leaseMs(config) : claim.leaseMs } }
        : {}),
      group: typeof group === 'function' ? group(config) : (group ?? appName),
    });
    if (!parsed.success) {
      const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(options)'}: ${issue.message}`);
      throw new ConsumerDeclarationError(`@EventConsumer of ${target.name}: ${problems.join('; ')}`);
    }
    const o = parsed.data;
    const clash = resolved.find((other) => other.group === o.group);
    if (clash) {
      throw new ConsumerDeclarationError(
        `${clash.className} and ${target.name} both consume as group ${o.group}: one consumer class per group`,
      );
    }
    resolved.push({
      className: target.name,
      group: o.group,
      kind: o.kind,
      inbox: o.inbox ?? (o.kind === 'durable' ? 'transactional' : 'none'),
      claim: o.claim,
      concurrency: o.concurrency,
      startFrom: o.kind === 'per-instance' ? 'latest' : (o.startFrom ?? 'earliest'),
      positions: declared.options.positions,
      transportId: declared.transportId,
    });
  }
  return resolved;
}

/** The event types a consumer class handles, from its `@HandleEvent` methods (for documents and checks). */
export function handledEventTypes(target: Constructor): string[] {
  return handlerMethods(target).flatMap((method) => {
    const patterns = Reflect.getMetadata(PATTERN_METADATA, method) as unknown;
    return (Array.isArray(patterns) ? patterns : [patterns]).map(String);
  });
}
