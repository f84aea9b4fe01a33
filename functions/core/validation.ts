import type * as z from 'zod';
import { FramecastError } from './errors.ts';

/** A zod failure as a 400 that names the field, e.g. `body.frames.end: must not be before frames.start`. */
export function validationError(error: z.ZodError, root = 'body'): FramecastError {
  const issue = error.issues[0];
  if (!issue) return new FramecastError('invalid_request', `${root} is invalid`);
  const path = [root, ...issue.path.map(String)].join('.');
  if (issue.code === 'unrecognized_keys') {
    const field = `${path}.${issue.keys[0]}`;
    return new FramecastError('invalid_request', `${field}: unknown field`, { field });
  }
  return new FramecastError('invalid_request', `${path}: ${issue.message}`, {
    field: path,
    issues: error.issues
      .slice(0, 10)
      .map((i) => ({ field: [root, ...i.path.map(String)].join('.'), message: i.message })),
  });
}

/** Parses `input` with `schema`, or throws the 400 that names the field. */
export function parse<S extends z.ZodType>(schema: S, input: unknown, root = 'body'): z.output<S> {
  const out = schema.safeParse(input);
  if (!out.success) throw validationError(out.error, root);
  return out.data;
}
