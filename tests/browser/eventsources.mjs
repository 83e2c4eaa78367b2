// How many EventSources can one page of a real browser keep receiving from one origin? Over
// HTTP/1.1 Chromium opens at most 6 connections per host, so the 7th stream hangs; over h2 they
// share one connection. Opens --count EventSources to <origin><path>?i=<n> from a page of that
// origin and prints one JSON line:
//   {"count":50,"with_events":N,"protocols":{"h2":K,...},"errors":[...]}
// with_events: sources that got at least one message; protocols: of each source's response.
// Exits 0 when the browser could be driven (the caller judges the numbers), else non-zero with a
// message on stderr; always within --timeout-ms plus about 10 s.
//
//   node tests/browser/eventsources.mjs --origin https://gw.test:8443 --path /sse/events \
//     --count 50 --spki BASE64 [--resolve gw.test=127.0.0.1] [--timeout-ms 20000] \
//     [--settle-ms 2000]

import { parseArgs } from 'node:util';
import { pollUntil, recordResponses, servePage, withBrowser, within } from './harness.mjs';

const USAGE =
  'usage: eventsources.mjs --origin https://HOST:PORT --path /PATH --count N --spki BASE64 ' +
  '[--resolve HOST=IP]... [--timeout-ms 20000] [--settle-ms 2000]';

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      origin: { type: 'string' },
      path: { type: 'string' },
      count: { type: 'string' },
      spki: { type: 'string' },
      resolve: { type: 'string', multiple: true, default: [] },
      'timeout-ms': { type: 'string', default: '20000' },
      'settle-ms': { type: 'string', default: '2000' },
    },
  });
  if (!URL.canParse(values.origin ?? '')) throw new Error('--origin wants https://HOST:PORT');
  const origin = new URL(values.origin).origin;
  const path = values.path ?? '';
  const count = Number(values.count);
  const timeoutMs = Number(values['timeout-ms']);
  const settleMs = Number(values['settle-ms']);
  if (!path.startsWith('/')) throw new Error('--path must start with /');
  const numbers = { '--count': count, '--timeout-ms': timeoutMs, '--settle-ms': settleMs };
  for (const [name, n] of Object.entries(numbers)) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  }
  const hostResolverRules = values.resolve
    .map((rule) => {
      const [host, ip] = rule.split('=');
      if (!host || !ip) throw new Error(`--resolve wants HOST=IP, got ${rule}`);
      return `MAP ${host} ${ip}`;
    })
    .join(', ');
  return { origin, path, count, spki: values.spki, hostResolverRules, timeoutMs, settleMs };
}

// The page counts, per source, the messages and error events; the harness polls window.state.
function pageHtml(streamUrl, count) {
  return `<!doctype html><title>eventsources</title><script>
window.state = [];
for (let i = 0; i < ${count}; i++) {
  const s = { messages: 0, errors: 0, readyState: 0 };
  window.state.push(s);
  const source = new EventSource(${JSON.stringify(streamUrl)} + '?i=' + i);
  source.onmessage = () => { s.messages++; };
  source.onerror = () => { s.errors++; s.readyState = source.readyState; };
}
</script>`;
}

// Waits until every source has a message, or no source got its first message for settleMs after
// at least one had, or timeoutMs. Returns the page's last state.
async function awaitMessages(page, { timeoutMs, settleMs }) {
  let state = [];
  let withEvents = 0;
  let lastNewSourceAt = 0;
  await pollUntil(
    async () => {
      state = await within(5000, 'reading the page state', page.evaluate(() => window.state));
      const now = state.filter((s) => s.messages > 0).length;
      if (now > withEvents) lastNewSourceAt = Date.now();
      withEvents = now;
      const settled = withEvents > 0 && Date.now() - lastNewSourceAt >= settleMs;
      return withEvents === state.length || settled;
    },
    { timeoutMs, intervalMs: 100 },
  );
  return state;
}

// Errors are grouped by kind, so the line stays short however many sources fail or reconnect.
function summarize({ count, streamUrl, state, responses, failures, pageErrors }) {
  // One protocol per source: a source that reconnected is counted once, by its first response.
  const firstResponse = new Map();
  for (const r of responses) {
    const ofASource = r.url.startsWith(`${streamUrl}?i=`);
    if (ofASource && !firstResponse.has(r.url)) firstResponse.set(r.url, r);
  }
  const protocols = {};
  const errorCounts = new Map();
  const countError = (what) => errorCounts.set(what, (errorCounts.get(what) ?? 0) + 1);
  for (const r of firstResponse.values()) {
    protocols[r.protocol] = (protocols[r.protocol] ?? 0) + 1;
    if (r.status !== 200) countError(`HTTP ${r.status} (sources)`);
  }
  for (const f of failures) {
    if (f.url.startsWith(streamUrl)) countError(`${f.errorText} (requests)`);
  }
  for (const s of state) {
    if (s.errors > 0) countError(`error events, readyState ${s.readyState} (sources)`);
  }
  const errors = [...pageErrors, ...[...errorCounts].map(([what, n]) => `${n} x ${what}`)];
  return { count, with_events: state.filter((s) => s.messages > 0).length, protocols, errors };
}

async function run(options) {
  const streamUrl = options.origin + options.path;
  const pageUrl = `${options.origin}/__browser_test__/page`;
  return withBrowser(
    { spki: options.spki, hostResolverRules: options.hostResolverRules, timeoutMs: 8000 },
    async (browser) => {
      const page = await browser.newPage();
      const pageErrors = [];
      page.on('pageerror', (e) => pageErrors.push(`page: ${e.message}`));
      const { responses, failures } = await recordResponses(page);
      await servePage(page, pageUrl, pageHtml(streamUrl, options.count));
      // 'commit': the streams never end, so the page's load may wait on them.
      await page.goto(pageUrl, { waitUntil: 'commit', timeout: 5000 });
      await page.waitForFunction(() => Array.isArray(window.state), null, { timeout: 5000 });
      const state = await awaitMessages(page, options);
      return summarize({ count: options.count, streamUrl, state, responses, failures, pageErrors });
    },
    { closeTimeoutMs: 3000 },
  );
}

async function main() {
  let options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`eventsources: ${e.message}\n${USAGE}\n`);
    return 2;
  }
  // The last guard: whatever hangs, give up at timeout + ~10 s. Exiting kills the browser, which
  // Playwright launched as our child.
  const watchdog = setTimeout(() => {
    process.stderr.write(`eventsources: gave up after ${options.timeoutMs + 9500} ms\n`);
    process.exit(3);
  }, options.timeoutMs + 9500);
  watchdog.unref();
  try {
    const result = await run(options);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`eventsources: could not drive the browser: ${e.message}\n`);
    return 1;
  }
}

// Exit explicitly: a browser that would not close must not keep node alive. (stdout to a pipe or
// file is written synchronously on Linux, so the JSON line is not lost.)
process.exit(await main());
