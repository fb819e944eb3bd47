import type { ErrorAnswer } from '../src/system/status';

/** An HTTP answer: its status, headers and JSON body (a text body that is not JSON becomes `message`). */
export interface Answer<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T & Partial<ErrorAnswer>;
}

export async function call<T = Record<string, unknown>>(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
  /** `include` only for a call that sets a cookie of its server's (the notifier's session). */
  credentials: RequestCredentials = 'same-origin',
): Promise<Answer<T>> {
  const sent: Record<string, string> = { ...headers };
  const init: RequestInit = { method, headers: sent, credentials };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    sent['content-type'] = 'application/json';
  }
  const response = await fetch(url, init);
  const raw = await response.text();
  let parsed: unknown;
  try {
    parsed = raw ? JSON.parse(raw) : {};
  } catch {
    parsed = { message: raw.slice(0, 200) };
  }
  return { status: response.status, headers: response.headers, body: parsed as T & Partial<ErrorAnswer> };
}

/** The error shape as one line: the message, then each field's. */
export function problem(answer: Answer<unknown>): string {
  const fields = (answer.body.errors ?? []).map((e) => `${e.field}: ${e.message}`);
  return [`${answer.status} ${answer.body.message ?? ''}`.trim(), ...fields].join(' · ');
}
