import { randomUUID } from 'node:crypto';
import { validatePayload } from '@app/contracts';
import { renderBody, subjectOf } from './mail.sender';

describe('welcome email content', () => {
  it('takes a username that looks like a placeholder as text, in the subject and the body', () => {
    for (const username of ['{{constructor}}', '{{__proto__}}', '{{username}}']) {
      const { data } = validatePayload('email.requested.v1', {
        to: 'ann@example.com',
        template: 'welcome',
        data: { username },
        userId: randomUUID(),
      });
      expect(subjectOf('welcome', data)).toBe(`Welcome, ${username}!`);
      expect(renderBody('welcome', data)).toContain(`Welcome, ${username}!`);
    }
  });

  it('escapes HTML in the body', () => {
    expect(renderBody('welcome', { username: '<b>ann</b>' })).toContain('Welcome, &lt;b&gt;ann&lt;/b&gt;!');
  });
});
