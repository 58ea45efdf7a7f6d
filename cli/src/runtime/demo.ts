import type { RunningTollgate } from './start-tollgate.js';

type Demo = NonNullable<RunningTollgate['demo']>;

/** The first call a newcomer makes: a path and query the echo upstream repeats back. */
const demoPath = '/hello?name=ada';

/** The shell command that calls the demo API with a key (the URL quoted: `?` is a glob in zsh). */
export function demoCurl(gatewayUrl: string, apiSlug: string, key: string): string {
  return `curl -H "Authorization: Bearer ${key}" "${gatewayUrl}/${apiSlug}${demoPath}"`;
}

/**
 * The `demo` object of `tollgate start --demo --json`: a new key's secret (only when this start
 * made it; never an earlier one), and the parts of a working call: url, headers, and curl as text.
 */
export function demoDocument(demo: Demo, gatewayUrl: string) {
  const url = `${gatewayUrl}/${demo.api.slug}${demoPath}`;
  const key = demo.newKey;
  return {
    api: demo.api.slug,
    api_created: demo.api.created,
    upstream_url: demo.upstreamUrl,
    plan: demo.plan.slug,
    plan_created: demo.plan.created,
    team: demo.team.slug,
    team_created: demo.team.created,
    key: key ? { id: key.id, prefix: key.prefix, secret: key.secret } : null,
    earlier_key_prefixes: demo.earlierKeyPrefixes,
    url,
    headers: key ? { authorization: `Bearer ${key.secret}` } : null,
    curl: key ? demoCurl(gatewayUrl, demo.api.slug, key.secret) : null,
    usage_command: `tollgate usage --team ${demo.team.slug}`,
  };
}

/** What `tollgate start --demo` tells a person (on stderr: it holds a secret, and is not the result). */
export function demoLines(demo: Demo, gatewayUrl: string): string[] {
  const made = [
    demo.api.created ? 'created the API demo' : 'reusing the API demo',
    demo.plan.created ? 'the plan demo' : undefined,
    demo.team.created ? 'the team demo (you own it)' : undefined,
  ].filter(Boolean);
  const lines = [`Demo: ${made.join(', ')}; it proxies to the built-in echo upstream at ${demo.upstreamUrl}.`];
  if (demo.newKey) {
    lines.push(
      `New API key for the team ${demo.team.slug} (shown once, keep it): ${demo.newKey.secret}`,
      'Call the demo API through the gateway:',
      `  ${demoCurl(gatewayUrl, demo.api.slug, demo.newKey.secret)}`,
    );
  } else {
    lines.push(
      `The team ${demo.team.slug} already has a demo key (${demo.earlierKeyPrefixes.join(', ')}...); its secret was shown when it was made and cannot be shown again.`,
      'Call the demo API with it (or start with --demo-new-key for a new one):',
      `  ${demoCurl(gatewayUrl, demo.api.slug, '$TOLLGATE_DEMO_KEY')}`,
    );
  }
  lines.push(`Then see the calls metered (about 10 seconds later): tollgate usage --team ${demo.team.slug}`);
  return lines;
}
