// Drives Debian's headless Chromium (never a browser of Playwright's own) so a test sees what a
// real browser sees from the gateway: which protocol it negotiates, how many streams it keeps open.
// Every step is bounded, and withBrowser() closes the browser whatever happens.

import { createHash, X509Certificate } from 'node:crypto';
import { chromium } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

// The base64 SHA-256 of the certificate's DER SubjectPublicKeyInfo, which
// --ignore-certificate-errors-spki-list takes; the same as `openssl x509 -pubkey -noout | openssl
// pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64`.
export function spkiHash(certificatePem) {
  const der = new X509Certificate(certificatePem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

// spki: trust a server certificate by its key hash, so the test CA need not be installed and the
// TLS path (ALPN, h2) stays the real one, unlike a context that ignores every certificate error.
// hostResolverRules: e.g. 'MAP gw.test 127.0.0.1', so a test name resolves without /etc/hosts.
export async function launchBrowser({ spki, hostResolverRules, timeoutMs = 15000 } = {}) {
  const args = [
    // Playwright adds most of these itself today; listed so a run does not depend on its defaults.
    '--headless',
    '--no-sandbox', // we run as root, where Chromium's sandbox refuses to start
    '--disable-gpu',
    '--disable-quic', // an Alt-Svc upgrade to HTTP/3 would change the protocol under test
    '--no-first-run',
    // Without these Chromium calls Google at start; this closed network refuses it.
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ];
  if (spki) args.push(`--ignore-certificate-errors-spki-list=${spki}`);
  if (hostResolverRules) args.push(`--host-resolver-rules=${hostResolverRules}`);
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args,
    timeout: timeoutMs,
  });
}

// Rejects with `what` timed out if `promise` has not settled within `ms`.
export async function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// Runs fn(browser) and closes the browser afterwards, even when fn throws. A close that hangs is
// given up after closeTimeoutMs: Playwright then kills the process when node exits.
export async function withBrowser(options, fn, { closeTimeoutMs = 5000 } = {}) {
  const browser = await launchBrowser(options);
  try {
    return await fn(browser);
  } finally {
    await within(closeTimeoutMs, 'closing the browser', browser.close()).catch((e) =>
      process.stderr.write(`harness: ${e.message}\n`));
  }
}

// Answers a navigation to `url` with `html` without a web server, so the page has the gateway's
// origin and its requests to the gateway are same-origin (no CORS). Only the first request is
// answered: later ones, like the page's EventSources, then go to the network uninterrupted.
export async function servePage(page, url, html) {
  await page.route(url, (route) => route.fulfill({ contentType: 'text/html', body: html }), {
    times: 1,
  });
}

// Records every network response the page receives, from Chromium's own view (CDP), including
// EventSource streams whose headers arrived but whose body never ends. Each entry:
// { url, status, protocol ('h2', 'http/1.1', …), type ('Document', 'EventSource', …) }.
// Failures (Network.loadingFailed) go to `failures` as { url, type, errorText, canceled }.
export async function recordResponses(page) {
  const cdp = await page.context().newCDPSession(page);
  const responses = [];
  const failures = [];
  const urls = new Map(); // requestId -> url, for failures, which name only the request
  cdp.on('Network.requestWillBeSent', (e) => urls.set(e.requestId, e.request.url));
  cdp.on('Network.responseReceived', (e) => {
    responses.push({
      url: e.response.url,
      status: e.response.status,
      protocol: e.response.protocol ?? 'unknown',
      type: e.type,
    });
  });
  cdp.on('Network.loadingFailed', (e) => {
    failures.push({
      url: urls.get(e.requestId) ?? '',
      type: e.type,
      errorText: e.errorText,
      canceled: Boolean(e.canceled),
    });
  });
  await cdp.send('Network.enable');
  return { responses, failures };
}

// Calls poll() every intervalMs until it returns a truthy value, which it returns, or until
// timeoutMs has passed, when it returns the last (falsy) value.
export async function pollUntil(poll, { timeoutMs, intervalMs = 100 }) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await poll();
    if (value || Date.now() >= deadline) return value;
    const pause = Math.min(intervalMs, deadline - Date.now());
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}
