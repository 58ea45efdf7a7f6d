import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TwilioSettings } from '../../src/sms/twilio-sms-sender.js';

/**
 * A local server speaking the part of Twilio's REST API that Tollgate uses: creating a message
 * (twilio.com/docs/messaging/api/message-resource#create-a-message-resource). It checks what Twilio
 * checks (HTTP Basic authentication with the account sid and auth token, a form-encoded body with
 * `To`, `From` or `MessagingServiceSid`, and `Body`), answers the shapes Twilio answers (201 with the
 * message resource, or an error body `{code, message, more_info, status}`), and records each message.
 *
 * Like Twilio's test credentials, `+15005550001` is an invalid number: sending to it answers
 * 400 with error 21211.
 */
export interface TwilioMessage {
  sid: string;
  accountSid: string;
  to: string;
  from: string | undefined;
  messagingServiceSid: string | undefined;
  body: string;
}

export interface TwilioServer {
  /** The API base, for TWILIO_API_BASE. */
  url: string;
  accountSid: string;
  /** The token the server accepts; set another to play an operator whose token was revoked at Twilio. */
  authToken: string;
  /** The sending number, for TWILIO_FROM. */
  from: string;
  /** Everything sent so far, oldest first. */
  messages: TwilioMessage[];
  /** Every request, accepted or refused, for checks on what reached the wire. */
  requests: { method: string; path: string; authorization: string | undefined; contentType: string | undefined }[];
  /** The settings a TwilioSmsSender needs to send here. */
  settings(overrides?: Partial<TwilioSettings>): TwilioSettings;
  /** The 6-digit code of the last message sent to `to`. */
  lastCode(to: string): string | undefined;
  /** While true, requests are read and never answered (for timeouts). */
  stall: boolean;
  close(): Promise<void>;
}

/** The number Twilio's test credentials treat as invalid (twilio.com/docs/iam/test-credentials). */
export const invalidTwilioNumber = '+15005550001';

const apiVersion = '2010-04-01';

function twilioError(response: ServerResponse, status: number, code: number, message: string): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify({ code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status }));
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startTwilioServer(): Promise<TwilioServer> {
  const accountSid = `AC${randomBytes(16).toString('hex')}`;
  let authToken = randomBytes(16).toString('hex');
  const from = '+15005550006';
  const messages: TwilioMessage[] = [];
  const requests: TwilioServer['requests'] = [];
  const stalled: ServerResponse[] = [];
  let stall = false;

  const server = createServer(async (request, response) => {
    const path = new URL(request.url ?? '/', 'http://twilio.test').pathname;
    requests.push({
      method: request.method ?? '',
      path,
      authorization: request.headers.authorization,
      contentType: request.headers['content-type'],
    });
    const text = await readBody(request);
    if (stall) {
      stalled.push(response);
      return;
    }
    const match = new RegExp(`^/${apiVersion}/Accounts/([^/]+)/Messages\\.json$`).exec(path);
    if (request.method !== 'POST' || !match) {
      twilioError(response, 404, 20404, `The requested resource ${path} was not found`);
      return;
    }
    const [scheme, encoded] = (request.headers.authorization ?? '').split(' ');
    const [user, ...secret] = Buffer.from(encoded ?? '', 'base64')
      .toString('utf8')
      .split(':');
    if (scheme !== 'Basic' || user !== accountSid || secret.join(':') !== authToken || match[1] !== accountSid) {
      twilioError(response, 401, 20003, 'Authenticate');
      return;
    }
    if (!request.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) {
      twilioError(response, 400, 21604, "A 'To' phone number is required.");
      return;
    }
    const form = new URLSearchParams(text);
    const to = form.get('To');
    const sender = form.get('From') ?? undefined;
    const service = form.get('MessagingServiceSid') ?? undefined;
    const body = form.get('Body');
    if (!to) return twilioError(response, 400, 21604, "A 'To' phone number is required.");
    if (!sender && !service) return twilioError(response, 400, 21603, "A 'From' phone number is required.");
    if (!body) return twilioError(response, 400, 21602, 'Message body is required.');
    if (!/^\+[1-9]\d{6,14}$/.test(to) || to === invalidTwilioNumber) {
      return twilioError(response, 400, 21211, `Invalid 'To' Phone Number: ${to}`);
    }
    const sid = `SM${randomBytes(16).toString('hex')}`;
    messages.push({ sid, accountSid, to, from: sender, messagingServiceSid: service, body });
    const now = new Date().toUTCString();
    response.writeHead(201, { 'content-type': 'application/json' });
    response.end(
      JSON.stringify({
        account_sid: accountSid,
        api_version: apiVersion,
        body,
        date_created: now,
        date_sent: null,
        date_updated: now,
        direction: 'outbound-api',
        error_code: null,
        error_message: null,
        from: sender ?? null,
        messaging_service_sid: service ?? null,
        num_media: '0',
        num_segments: '1',
        price: null,
        price_unit: 'USD',
        sid,
        status: service ? 'accepted' : 'queued',
        to,
        uri: `/${apiVersion}/Accounts/${accountSid}/Messages/${sid}.json`,
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    accountSid,
    get authToken() {
      return authToken;
    },
    set authToken(value: string) {
      authToken = value;
    },
    from,
    messages,
    requests,
    settings: (overrides = {}) => ({ accountSid, authToken, from, apiBase: url, ...overrides }),
    lastCode(to) {
      const message = messages.filter((sent) => sent.to === to).at(-1);
      return /\b(\d{6})\b/.exec(message?.body ?? '')?.[1];
    },
    get stall() {
      return stall;
    },
    set stall(value: boolean) {
      stall = value;
    },
    async close() {
      for (const response of stalled) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
