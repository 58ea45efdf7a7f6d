import type { TLSSocket } from 'node:tls';
import type { Context } from 'koa';

/**
 * The base of links in emails: the configured public URL, else the local address the request reached. Never the
 * Host or Origin header, which the sender chooses: a link pointing at their host would hand them
 * the token it carries.
 */
export function linkBase(ctx: Context, publicUrl: string | undefined): string {
  if (publicUrl) return publicUrl.replace(/\/+$/, '');
  const socket = ctx.req.socket;
  const address = (socket.localAddress ?? '127.0.0.1').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  const host = address.includes(':') ? `[${address}]` : address;
  const protocol = (socket as Partial<TLSSocket>).encrypted ? 'https' : 'http';
  return `${protocol}://${host}:${socket.localPort}`;
}
