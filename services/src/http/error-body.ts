import { z } from 'zod';
import type { ErrorCode } from '../errors/error-codes.js';

/** The one error shape every HTTP answer uses. */
export const errorBodySchema = z.object({
  error: z.object({
    code: z.string().describe('Stable, machine-readable error code'),
    message: z.string().describe('Human-readable explanation'),
    request_id: z.string().describe('The X-Request-Id of the failed request'),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
});

export type ErrorBody = z.infer<typeof errorBodySchema>;

export function errorBody(
  code: ErrorCode,
  message: string,
  requestId: string,
  details?: Record<string, unknown>,
): ErrorBody {
  return { error: { code, message, request_id: requestId, ...(details === undefined ? {} : { details }) } };
}
