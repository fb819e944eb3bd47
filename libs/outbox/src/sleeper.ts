import { timerDelay } from '@app/messaging';

/**
 * The relay's waits. An idle wait ends early on `wake()` (a commit's NOTIFY); a backoff after a failure does not,
 * or every commit during an outage would cut it short and retry at once. `interrupt()` (stop) ends either.
 */
export class Sleeper {
  private pendingWake = false;
  private current?: { finish: () => void; wakeable: boolean };

  sleep(ms: number, kind: 'idle' | 'backoff'): Promise<void> {
    const wakeable = kind === 'idle';
    if (wakeable && this.pendingWake) {
      this.pendingWake = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        if (this.current?.finish === finish) this.current = undefined;
        resolve();
      };
      const timer = setTimeout(finish, timerDelay(ms));
      this.current = { finish, wakeable };
    }).then(() => {
      if (wakeable) this.pendingWake = false;
    });
  }

  /** Something to do: ends an idle wait now, or the next one at once. A backoff runs to its end. */
  wake(): void {
    this.pendingWake = true;
    if (this.current?.wakeable) this.current.finish();
  }

  /** Ends any wait now (shutdown). */
  interrupt(): void {
    this.pendingWake = true;
    this.current?.finish();
  }
}
