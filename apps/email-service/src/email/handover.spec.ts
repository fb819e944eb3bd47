import { InboxTransactionLostError } from '@app/inbox';
import { Handover, SmtpSendDeadlineError } from './handover';

describe('SMTP hand-over', () => {
  const alive = () => Promise.resolve(() => true);

  it('cuts the send at its deadline while the message is not handed over', async () => {
    const handover = new Handover({
      deadlineAt: Date.now() + 50,
      deadlineMs: 50,
      signal: new AbortController().signal,
      confirm: alive,
    });
    await new Promise((resolve) => handover.signal.addEventListener('abort', resolve));
    expect(handover.cutReason).toBeInstanceOf(SmtpSendDeadlineError);
    await expect(handover.beforeDot()).rejects.toBeInstanceOf(SmtpSendDeadlineError);
    handover.dispose();
  });

  it('never cuts after the hand-over: the server reply decides', async () => {
    const inbox = new AbortController();
    const handover = new Handover({
      deadlineAt: Date.now() + 50,
      deadlineMs: 50,
      signal: inbox.signal,
      confirm: alive,
    });
    await handover.beforeDot();
    inbox.abort(new InboxTransactionLostError('gone'));
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(handover.signal.aborted).toBe(false);
    handover.dispose();
  });

  it('withholds the message when the transaction cannot be confirmed, or the check no longer holds', async () => {
    const signal = new AbortController().signal;
    const lost = new InboxTransactionLostError('the inbox transaction ended: Connection terminated');
    const dead = new Handover({
      deadlineAt: Date.now() + 10_000,
      deadlineMs: 10_000,
      signal,
      confirm: () => Promise.reject(lost),
    });
    await expect(dead.beforeDot()).rejects.toBe(lost);
    expect(dead.cutReason).toBe(lost);
    const stale = new Handover({
      deadlineAt: Date.now() + 10_000,
      deadlineMs: 10_000,
      signal,
      confirm: () => Promise.resolve(() => false),
    });
    await expect(stale.beforeDot()).rejects.toBeInstanceOf(InboxTransactionLostError);
    expect(stale.signal.aborted).toBe(true);
    dead.dispose();
    stale.dispose();
  });
});
