/** The one way this page makes DOM: text and attributes, never HTML (event data is user input). */

export type Child = Node | string | null | undefined;

export function el(tag: string, attributes: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  for (const child of children) {
    if (child === null || child === undefined) continue;
    element.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return element;
}

export function must<T extends Element = HTMLElement>(selector: string): T {
  const found = document.querySelector<T>(selector);
  if (!found) throw new Error(`the page lacks ${selector}`);
  return found;
}

export const clock = () => new Date().toLocaleTimeString();

/** A form field's text ('' for a file or a missing field). */
export function text(form: FormData, name: string): string {
  const value = form.get(name);
  return typeof value === 'string' ? value : '';
}

/** Children without the absent ones, for replaceChildren. */
export const present = (...children: Child[]): (Node | string)[] =>
  children.filter((child): child is Node | string => child !== null && child !== undefined);

/** Adds a line at the top of a log list, keeping the last 50. */
export function logLine(list: Element, kind: 'ok' | 'wait' | 'error' | 'info', ...content: Child[]): HTMLElement {
  const line = el('li', { class: kind }, el('time', {}, clock()), ' ', ...content);
  list.prepend(line);
  while (list.children.length > 50) list.lastElementChild?.remove();
  return line;
}

export const count = (value: number | null): string => (value === null ? '?' : String(value));

export const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
