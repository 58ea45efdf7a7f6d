/** A webhook endpoint as /v1/teams/:team/webhooks answers it (`secret` only when just added). */
export interface WebhookEndpointBody {
  id: string;
  url: string;
  description: string | null;
  events: string[];
  enabled: boolean;
  created_at: string;
  updated_at: string;
  secret?: string;
}

/** A delivery as /v1/teams/:team/webhook-deliveries answers it. */
export interface WebhookDeliveryBody {
  id: string;
  event_id: string;
  event_type: string;
  endpoint_id: string;
  endpoint_url: string;
  status: 'pending' | 'succeeded' | 'failed' | 'exhausted';
  attempt_count: number;
  next_attempt_at: string | null;
  give_up_at: string;
  last_status_code: number | null;
  last_error: string | null;
  last_response_ms: number | null;
  replay_of: string | null;
  created_at: string;
  completed_at: string | null;
}

/** The event types an endpoint can subscribe to (services/src/webhooks/webhook-events.ts). */
export const webhookEventTypes = [
  'invoice.finalized',
  'invoice.paid',
  'invoice.voided',
  'quota.threshold_reached',
  'quota.exhausted',
  'subscription.updated',
  'key.rotated',
] as const;

export const deliveryStatuses = ['pending', 'succeeded', 'failed', 'exhausted'] as const;
