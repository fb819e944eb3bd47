import { ArgumentMetadata, StandardSchemaValidationPipe } from '@nestjs/common';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { FieldError, ValidationFailedError } from './app-error';

/** Zod passes its own issues through Standard Schema; an unknown-keys issue names the keys. */
interface UnrecognizedKeysIssue extends StandardSchemaV1.Issue {
  code: 'unrecognized_keys';
  keys: string[];
}

function isUnrecognizedKeys(issue: StandardSchemaV1.Issue): issue is UnrecognizedKeysIssue {
  return (issue as Partial<UnrecognizedKeysIssue>).code === 'unrecognized_keys';
}

/**
 * One error per field: `email`, `data.name`, or the unknown key itself (`role`, `isAdmin`). An issue about the value
 * as a whole is reported under `whole`: `body`, or the route parameter's name (`id`).
 */
export function toFieldErrors(issues: readonly StandardSchemaV1.Issue[], whole = 'body'): FieldError[] {
  return issues.flatMap((issue) => {
    const base = (issue.path ?? []).map((p) => String(typeof p === 'object' ? p.key : p));
    if (isUnrecognizedKeys(issue)) {
      return issue.keys.map((key) => ({ field: [...base, key].join('.'), message: 'is not an allowed field' }));
    }
    return [{ field: base.length > 0 ? base.join('.') : whole, message: issue.message }];
  });
}

/** The issues of one failed validation, until the pipe knows which argument they are about. */
class SchemaIssues {
  constructor(readonly issues: readonly StandardSchemaV1.Issue[]) {}
}

/** Nest's Standard Schema pipe, answering with the API's one error shape, each error under the field it is about. */
class ApiValidationPipe extends StandardSchemaValidationPipe {
  override async transform<T = unknown>(value: T, metadata: ArgumentMetadata): Promise<T> {
    try {
      return await super.transform(value, metadata);
    } catch (error) {
      if (!(error instanceof SchemaIssues)) throw error;
      const whole = metadata.type === 'body' ? 'body' : (metadata.data ?? metadata.type);
      throw new ValidationFailedError(toFieldErrors(error.issues, whole));
    }
  }
}

export function createValidationPipe(): StandardSchemaValidationPipe {
  return new ApiValidationPipe({ exceptionFactory: (issues) => new SchemaIssues(issues) });
}
