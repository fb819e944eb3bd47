import { ArgumentsHost, Catch, RpcExceptionFilter, UseFilters } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { Observable, throwError } from 'rxjs';
import type { EventOf, EventType } from '@app/contracts';
import type { ConsumeContext } from './consume-context';

/**
 * Nest's RPC exception filter turns every handler error into `{ status: 'error' }`, losing its class. The runner
 * classifies failures by class, so event handlers hand the original error on.
 */
@Catch()
export class PassThroughEventErrorsFilter implements RpcExceptionFilter<unknown> {
  catch(exception: unknown, _host: ArgumentsHost): Observable<never> {
    return throwError(() => exception);
  }
}

type EventHandler<T extends EventType> = (event: EventOf<T>, context: ConsumeContext) => Promise<void> | void;

/**
 * Marks a method as the handler of one event type, called with `(event, context: ConsumeContext)`. The type
 * parameter ties the method's signature to the contract: a handler taking another event's payload does not compile.
 */
export function HandleEvent<T extends EventType>(type: T) {
  return <H extends EventHandler<T>>(target: object, key: string | symbol, descriptor: TypedPropertyDescriptor<H>) => {
    const untyped = descriptor as unknown as TypedPropertyDescriptor<(...args: unknown[]) => unknown>;
    EventPattern(type)(target, key, untyped);
    UseFilters(PassThroughEventErrorsFilter)(target, key, untyped);
    // Without parameter decorators Nest hands an event handler its payload alone: pass the context as the second
    // argument too, so `context.heartbeat()` and `context.transaction` work without @Payload()/@Ctx() on every handler.
    Payload()(target, key, 0);
    Ctx()(target, key, 1);
  };
}
