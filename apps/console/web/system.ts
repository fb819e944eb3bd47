import type { ConsoleSession, ConsoleSettings, SystemSnapshot } from '../src/system/status';
import { count, el, must, pause } from './dom.js';
import { call, problem } from './http.js';
import type { Session } from './session.js';

/** Lag over the last minutes as an SVG polyline: numbers only, nothing parsed. */
function sparkline(points: number[]): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 100 20');
  svg.setAttribute('class', 'spark');
  const max = Math.max(1, ...points);
  const line = document.createElementNS(ns, 'polyline');
  const step = points.length > 1 ? 100 / (points.length - 1) : 0;
  line.setAttribute(
    'points',
    points.map((v, i) => `${(i * step).toFixed(1)},${(19 - (v / max) * 18).toFixed(1)}`).join(' '),
  );
  svg.append(line);
  return svg;
}

const cells = (...values: (Node | string)[]) => values.map((value) => el('td', {}, value));

/**
 * The System view, for admins: apps, topics and consumer groups from the console's /system/stream. The stream takes
 * the access token from the console's cookie, which POST /session sets from the page's Bearer token (an EventSource
 * cannot send the header): posted at sign-in and after every refresh. Anyone else sees why there is nothing. Until
 * the first snapshot the tables say they are being read (index.html), never look empty.
 */
export function systemPanel(
  settings: ConsoleSettings,
  session: Session,
  showDeadLetters: (group: string | undefined) => void,
): void {
  const view = must('#system-view');
  const gate = must('#system-gate');
  const lagHistory = new Map<string, number[]>();
  const history = Math.max(10, Math.round(180_000 / settings.refreshMs));

  function render(snapshot: SystemSnapshot): void {
    const kafka = must('#kafka-status');
    kafka.textContent = snapshot.kafka.reachable
      ? `Kafka reachable · updated ${new Date(snapshot.at).toLocaleTimeString()}`
      : `Kafka unreachable: ${snapshot.kafka.error ?? ''}`;
    kafka.className = snapshot.kafka.reachable ? 'status ok' : 'status error';
    must('#apps tbody').replaceChildren(
      ...snapshot.apps.map((app) =>
        el(
          'tr',
          { 'data-app': app.name, class: app.status === 'ready' ? 'ok' : 'error' },
          ...cells(app.name, app.status, app.detail ?? ''),
        ),
      ),
    );
    must('#topics tbody').replaceChildren(
      ...snapshot.topics.map((topic) =>
        el(
          'tr',
          {},
          ...cells(topic.topic, String(topic.messages), topic.perSecond === null ? '…' : topic.perSecond.toFixed(1)),
        ),
      ),
    );
    must('#groups tbody').replaceChildren(
      ...snapshot.groups.map((group) => {
        const points = lagHistory.get(group.group) ?? [];
        if (group.lag !== null) points.push(group.lag);
        while (points.length > history) points.shift();
        lagHistory.set(group.group, points);
        const show = el('button', { type: 'button', class: 'link' }, `${count(group.deadLetters)} · show`);
        show.addEventListener('click', () => showDeadLetters(group.group));
        return el(
          'tr',
          { 'data-group': group.group },
          ...cells(group.group, count(group.lag), sparkline(points), count(group.retryBacklog)),
          el('td', { class: group.deadLetters ? 'error' : '' }, show),
        );
      }),
    );
  }

  let stream: EventSource | undefined;
  let generation = 0;
  /** The last DELETE /session: a sign-in right after a sign-out must not have its new cookie cleared by it. */
  let closing: Promise<unknown> = Promise.resolve();

  function shut(why: string, kind: 'status' | 'status error'): void {
    generation += 1;
    stream?.close();
    stream = undefined;
    view.hidden = true;
    gate.hidden = false;
    gate.textContent = why;
    gate.className = kind;
    showDeadLetters(undefined);
  }

  async function connect(): Promise<void> {
    const mine = ++generation;
    await closing;
    const answer = await session.call<ConsoleSession>('POST', '/session');
    if (mine !== generation) return;
    if (answer.status !== 200) {
      const who = session.account ? `${session.account.username} has the role ${session.account.role}` : '';
      shut(
        `Sign in as an admin to see the system (${[who, problem(answer)].filter(Boolean).join('; ')}).`,
        'status error',
      );
      return;
    }
    gate.hidden = true;
    view.hidden = false;
    if (stream && stream.readyState !== EventSource.CLOSED) return; // it reads the new cookie when it reconnects
    stream = new EventSource('/system/stream');
    stream.addEventListener('system', (message) =>
      render(JSON.parse((message as MessageEvent<string>).data) as SystemSnapshot),
    );
    stream.onerror = () => {
      // Refused at a reconnect (the cookie's token expired or lost the role): ask again with the current token.
      if (stream?.readyState === EventSource.CLOSED) {
        stream = undefined;
        const at = generation;
        void pause(3000).then(() => (at === generation && session.account ? connect() : undefined));
      }
    };
  }

  shut('Sign in as an admin to see the system.', 'status');
  session.subscribe((account) => {
    if (account) {
      void connect();
      return;
    }
    shut('Sign in as an admin to see the system.', 'status');
    closing = call('DELETE', '/session').catch(() => undefined);
  });
}
