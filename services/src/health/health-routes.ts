import { z } from 'zod';
import type { CounterStore } from '../counters/counter-store.js';
import { errorBody, errorBodySchema } from '../http/error-body.js';
import { defineRoute } from '../http/route.js';
import type { Database } from '../storage/database.js';
import { checkReadiness, describeNotReady, readinessSchema } from './readiness.js';

export function healthRoutes(options: { database: Database; counters: CounterStore }) {
  return [
    defineRoute({
      method: 'get',
      path: '/healthz',
      operationId: 'getLiveness',
      summary: 'Liveness: the process is up and answering',
      tags: ['operations'],
      responses: { 200: { description: 'Alive', schema: z.object({ status: z.literal('ok') }) } },
      handler: (ctx) => {
        ctx.body = { status: 'ok' };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/readyz',
      operationId: 'getReadiness',
      summary: 'Readiness: the database and the counter store answer',
      description: 'Answers 503 naming each component that is down; comes back to 200 by itself when it recovers.',
      tags: ['operations'],
      responses: {
        200: { description: 'Ready', schema: readinessSchema },
        503: { description: 'Not ready', schema: readinessSchema.extend(errorBodySchema.shape) },
      },
      handler: async (ctx) => {
        const readiness = await checkReadiness(options);
        ctx.set('Cache-Control', 'no-store');
        if (readiness.status === 'ready') {
          ctx.body = readiness;
          return;
        }
        ctx.status = 503;
        ctx.body = {
          ...readiness,
          ...errorBody('not_ready', `not ready: ${describeNotReady(readiness)}`, ctx.state.requestId),
        };
      },
    }),
  ];
}
