import { z } from 'zod';

interface Documented {
  description?: string;
  content?: Record<string, { schema?: { $ref?: string } }>;
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, { responses: Record<string, Documented> }>>;
  components: { schemas: Record<string, Record<string, unknown>> };
}

/** How a real answer differs from what the document says of it; empty when it matches. */
export interface Mismatch {
  route: string;
  status: number;
  problem: string;
}

/**
 * Checks real answers against an OpenAPI document: the status must be documented for the operation, and a JSON body
 * must match the schema documented for that status (read from the document itself, through zod's JSON Schema reader).
 */
export class OpenApiConformance {
  readonly mismatches: Mismatch[] = [];
  /** `method path status` of every answer checked. */
  readonly seen = new Set<string>();

  constructor(private readonly document: OpenApiDocument) {}

  /** `route` is the operation as documented, `post /posts/{id}`; returns the parsed body (JSON) or undefined. */
  async check(route: string, response: Response): Promise<unknown> {
    const [method, path] = route.split(' ');
    const status = response.status;
    this.seen.add(`${route} ${status}`);
    const fail = (problem: string) => this.mismatches.push({ route, status, problem });
    const documented = this.document.paths[path]?.[method]?.responses[String(status)];
    const text = await response.text();
    if (!documented) {
      fail('status not documented');
      return undefined;
    }
    const type = (response.headers.get('content-type') ?? '').split(';')[0].trim();
    if (!documented.content) {
      if (text.length > 0) fail(`documented without a body, answered ${type} of ${text.length} bytes`);
      return undefined;
    }
    const media = documented.content[type];
    if (!media) {
      fail(`content type ${type || '(none)'} not among ${Object.keys(documented.content).join(', ')}`);
      return undefined;
    }
    if (type !== 'application/json') return undefined;
    const body = JSON.parse(text) as unknown;
    const name = media.schema?.$ref?.replace('#/components/schemas/', '');
    const schema = name ? this.document.components.schemas[name] : media.schema;
    if (!schema) return body;
    const result = z.fromJSONSchema(schema).safeParse(body);
    if (!result.success) {
      fail(
        `body does not match ${name ?? 'its schema'}: ${result.error.issues.map((i) => `${i.path.join('.') || '(root)'} ${i.message}`).join('; ')}`,
      );
    }
    return body;
  }
}
