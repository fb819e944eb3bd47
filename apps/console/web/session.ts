import { type Answer, call } from './http.js';

/** users-api's GET /users/me (AccountResponse in apps/users-api/src/users/users.schemas.ts). */
export interface Account {
  id: string;
  email: string;
  username: string;
  role: 'user' | 'admin';
}

/** users-api's POST /sessions and /sessions/refresh (SessionResponse in apps/users-api/src/sessions). */
interface Tokens {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

/** What changed: a sign-in, a new access token for the same account (refreshed), or a sign-out. */
export type SessionChange = 'signed-in' | 'refreshed' | 'signed-out';
export type SessionListener = (account: Account | undefined, change: SessionChange) => void;

/**
 * The page's sign-in at users-api: the tokens live in this object only (no storage a script or another tab could
 * read later; a reload signs out). The access token is refreshed shortly before it expires, and once more when an
 * answer is 401 anyway (a sleeping laptop, a clock that jumped); a refresh that fails ends the sign-in.
 */
export class Session {
  private tokens?: Tokens;
  private current?: Account;
  private timer?: ReturnType<typeof setTimeout>;
  private refreshing?: Promise<boolean>;
  private readonly listeners: SessionListener[] = [];

  constructor(private readonly apiUrl: string) {}

  get account(): Account | undefined {
    return this.current;
  }

  /** Called on every change; at once too when someone is signed in already. */
  subscribe(listener: SessionListener): void {
    this.listeners.push(listener);
    if (this.current) listener(this.current, 'signed-in');
  }

  /** The answer of POST /sessions when it is not 201 (the panel shows it), undefined once signed in. */
  async signIn(email: string, password: string): Promise<Answer<unknown> | undefined> {
    if (this.tokens) await this.signOut();
    const answer = await call<Tokens>('POST', `${this.apiUrl}/sessions`, { email, password });
    if (answer.status !== 201) return answer;
    this.use(answer.body);
    const me = await this.call<Account>('GET', `${this.apiUrl}/users/me`);
    if (me.status !== 200) {
      this.forget();
      return me;
    }
    this.current = me.body;
    this.emit('signed-in');
    return undefined;
  }

  /** DELETE /sessions (its refresh tokens stop working), then forgets the tokens whatever users-api answered. */
  async signOut(): Promise<void> {
    if (!this.tokens) return;
    await this.call('DELETE', `${this.apiUrl}/sessions`).catch(() => undefined);
    this.forget();
    this.emit('signed-out');
  }

  /** `Authorization: Bearer` of the current access token ({} when signed out). */
  bearer(): Record<string, string> {
    return this.tokens ? { authorization: `Bearer ${this.tokens.accessToken}` } : {};
  }

  /** A call with the access token; a 401 refreshes it and tries once more. */
  async call<T = Record<string, unknown>>(
    method: string,
    url: string,
    body?: unknown,
    headers: Record<string, string> = {},
    credentials?: RequestCredentials,
  ): Promise<Answer<T>> {
    const sent = this.tokens?.accessToken;
    const answer = await call<T>(method, url, body, { ...headers, ...this.bearer() }, credentials);
    if (answer.status !== 401 || sent === undefined) return answer;
    // Another call may have refreshed meanwhile: then only try again with its token.
    const fresh = this.tokens?.accessToken !== sent || (await this.refresh());
    return fresh ? call<T>(method, url, body, { ...headers, ...this.bearer() }, credentials) : answer;
  }

  /** POST /sessions/refresh, one at a time; false (and signed out) when the sign-in is over. */
  private refresh(): Promise<boolean> {
    this.refreshing ??= (async () => {
      const refreshToken = this.tokens?.refreshToken;
      if (refreshToken === undefined) return false;
      const answer = await call<Tokens>('POST', `${this.apiUrl}/sessions/refresh`, { refreshToken }).catch(
        () => undefined,
      );
      if (answer?.status !== 200) {
        this.forget();
        this.emit('signed-out');
        return false;
      }
      this.use(answer.body);
      // The role reaches the account at a refresh (npm run users -- grant-admin): read it again.
      const me = await call<Account>('GET', `${this.apiUrl}/users/me`, undefined, this.bearer());
      if (me.status === 200) this.current = me.body;
      this.emit('refreshed');
      return true;
    })().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private use(tokens: Tokens): void {
    this.tokens = tokens;
    clearTimeout(this.timer);
    // Well before it expires: a minute, or a fifth of its life when that is shorter.
    const ahead = Math.min(60, tokens.expiresIn / 5);
    this.timer = setTimeout(() => void this.refresh(), Math.max(1, tokens.expiresIn - ahead) * 1000);
  }

  private forget(): void {
    clearTimeout(this.timer);
    this.tokens = undefined;
    this.current = undefined;
  }

  private emit(change: SessionChange): void {
    for (const listener of this.listeners) listener(this.current, change);
  }
}
