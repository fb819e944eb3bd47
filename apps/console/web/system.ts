import type { ConsoleSettings, SystemSnapshot } from '../src/system/status';
import { count, el, must } from './dom.js';

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
 * The System view: apps, topics and consumer groups from the console's /system/stream. Until the first snapshot the
 * tables say they are being read (index.html), never look empty.
 */
export function systemPanel(settings: ConsoleSettings, showDeadLetters: (group: string) => void): void {
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

  const stream = new EventSource('/system/stream');
  stream.addEventListener('system', (message) =>
    render(JSON.parse((message as MessageEvent<string>).data) as SystemSnapshot),
  );
}
