import { StandardSchemaValidationPipe } from '@nestjs/common';
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

/** One error per field: `email`, `data.name`, or the unknown key itself (`role`, `isAdmin`). */
export function toFieldErrors(issues: readonly StandardSchemaV1.Issue[]): FieldError[] {
  return issues.flatMap((issue) => {
    const base = (issue.path ?? []).map((p) => String(typeof p === 'object' ? p.key : p));
    if (isUnrecognizedKeys(issue)) {
      return issue.keys.map((key) => ({ field: [...base, key].join('.'), message: 'is not an allowed field' }));
    }
    return [{ field: base.length > 0 ? base.join('.') : 'body', message: issue.message }];
  });
}

/** Nest's Standard Schema pipe, answering with the API's one error shape. */
export function createValidationPipe(): StandardSchemaValidationPipe {
  return new StandardSchemaValidationPipe({
    exceptionFactory: (issues) => new ValidationFailedError(toFieldErrors(issues)),
  });
}
