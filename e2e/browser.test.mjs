// Headless Debian Chromium (driven by playwright-core) against xanoauth:
// a cross-origin API login with credentials, then a person's flow through
// the login page, a guarded static page and logout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startCaddy, SITE, OTHER, SIBLING, ARTIFACTS, uniqueEmail } from './lib.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

let caddy;
let context;
let profile;
before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  caddy = await startCaddy();
  profile = mkdtempSync(join(tmpdir(), 'xanoauth-chromium-'));
  // A persistent context is how Playwright takes a --user-data-dir: a fresh,
  // empty one per run.
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 900, height: 700 },
  });
  mkdirSync(ARTIFACTS, { recursive: true });
});
after(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await caddy?.stop();
});

async function signup(email, name = 'Ann') {
  const r = await fetch(`${SITE}/api:e2e/auth/signup`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name, email, password: 'secret123' }),
  });
  assert.equal(r.status, 200, await r.text());
}

test('a page on another origin logs in with fetch, credentials and CORS', async () => {
  const email = uniqueEmail('cors');
  await signup(email);
  const page = await context.newPage();
  await page.goto(`${OTHER}/`);
  assert.equal(await page.textContent('h1'), 'Another site');

  const result = await page.evaluate(async ({ api, email }) => {
    const post = (path, body) => fetch(`${api}${path}`, {
      method: 'POST',
      credentials: 'include',
      headers: { 'Content-Type': 'application/json' }, // not CORS-safelisted: a preflight
      body: JSON.stringify(body),
    });
    const login = await post('/auth/login', { email, password: 'secret123' });
    const loginBody = await login.json();
    const me = await fetch(`${api}/auth/me`, {
      credentials: 'include',
      headers: { Authorization: `Bearer ${loginBody.authToken}` },
    });
    const wrong = await post('/auth/login', { email, password: 'wrong1234' });
    return {
      login: { status: login.status, type: login.headers.get('content-type'), body: loginBody },
      me: { status: me.status, body: await me.json() },
      wrong: { status: wrong.status, body: await wrong.json() },
    };
  }, { api: `${SITE}/api:e2e`, email });

  assert.equal(result.login.status, 200);
  assert.equal(result.login.type, 'application/json; charset=utf-8');
  assert.match(result.login.body.authToken, /^eyJ[\w-]+\.[\w-]+\.[\w-]+\.[\w-]+\.[\w-]+$/);
  assert.equal(result.me.status, 200);
  assert.equal(result.me.body.email, email);
  // Errors are readable cross-origin too (CORS headers on every answer).
  assert.equal(result.wrong.status, 403);
  assert.deepEqual(result.wrong.body, { code: 'ERROR_CODE_ACCESS_DENIED', message: 'Invalid Credentials.', payload: '' });

  // The cross-site login did not plant a session cookie (SameSite=Lax:
  // the browser would refuse it, and setting it would allow login CSRF).
  const cookies = await context.cookies(SITE);
  assert.equal(cookies.find((c) => c.name === 'xano_auth'), undefined);
  await page.close();
});

test('a person: guarded page → login page → back to the page → log out', async () => {
  const email = uniqueEmail('person');
  await signup(email, 'Pat');
  const page = await context.newPage();

  // 0. On the public page, a script's fetch of the guarded area is an API
  //    call: it gets the 401 envelope, not a redirect to the login page.
  await page.goto(`${SITE}/`);
  const fetched = await page.evaluate(async () => {
    const r = await fetch('/members/', { headers: { Accept: 'text/html' } });
    return { status: r.status, redirected: r.redirected, body: await r.json() };
  });
  assert.deepEqual(fetched, {
    status: 401, redirected: false,
    body: { code: 'ERROR_CODE_UNAUTHORIZED', message: 'Unauthorized - Authentication Required', payload: '' },
  });

  // 1. Following the link to the guarded page sends the browser to the
  //    login page, remembering where it was going.
  await page.getByRole('link', { name: 'Members area' }).click();
  await page.waitForURL(`${SITE}/login?return=%2Fmembers%2F`);
  await page.goto(`${SITE}/members/?x=1`);
  assert.equal(page.url(), `${SITE}/login?return=%2Fmembers%2F%3Fx%3D1`);
  assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Sign in');
  await page.screenshot({ path: join(ARTIFACTS, 'login-page.png') });

  // 2. A wrong password: the form again, with Xano's message, status 403.
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('wrong1234');
  let [resp] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${SITE}/login` && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  assert.equal(resp.status(), 403);
  await page.waitForLoadState();
  assert.equal(await page.getByRole('alert').textContent(), 'Invalid Credentials.');
  assert.equal(await page.getByLabel('Email').inputValue(), email);
  await page.screenshot({ path: join(ARTIFACTS, 'login-page-error.png') });

  // 3. The right password: 303 back to the page asked for, with the
  //    session cookie.
  await page.getByLabel('Password').fill('secret123');
  [resp] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${SITE}/login` && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  assert.equal(resp.status(), 303);
  await page.waitForURL(`${SITE}/members/?x=1`);
  assert.match(await page.locator('#greeting').textContent(), /^Hello member \d+ \(member\)$/);
  const session = (await context.cookies(SITE)).find((c) => c.name === 'xano_auth');
  assert.ok(session, 'no session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.secure, false); // plain HTTP on localhost
  assert.equal(session.sameSite, 'Lax');
  assert.equal(session.path, '/');
  assert.ok(session.expires > Date.now() / 1000 + 86400 - 120, 'Max-Age is not the token lifetime (24h)');
  await page.screenshot({ path: join(ARTIFACTS, 'members-page.png') });

  // 4. Log out with the page's link: back on the login page, signed out.
  await page.getByRole('link', { name: 'Log out' }).click();
  await page.waitForURL(`${SITE}/login?logged_out=1`);
  assert.equal(await page.getByRole('status').textContent(), 'You have been signed out.');
  assert.equal((await context.cookies(SITE)).find((c) => c.name === 'xano_auth'), undefined);

  // 5. The guarded page redirects again.
  await page.goto(`${SITE}/members/`);
  assert.equal(page.url(), `${SITE}/login?return=%2Fmembers%2F`);

  // 6. The revoked token is dead even if someone kept a copy of the cookie.
  const replay = await fetch(`${SITE}/members/`, { headers: { Cookie: `xano_auth=${session.value}` } });
  assert.equal(replay.status, 401);
  await page.close();
});

test('an open redirect through the login page is refused', async () => {
  const email = uniqueEmail('redirect');
  await signup(email);
  const page = await context.newPage();
  await page.goto(`${SITE}/login?return=${encodeURIComponent('//evil.example/x')}`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('secret123');
  await Promise.all([page.waitForURL(`${SITE}/`), page.getByRole('button', { name: 'Sign in' }).click()]);
  assert.equal(page.url(), `${SITE}/`);
  await page.close();
});

// The guard's answers to a person who logs out, tampers with the cookie or
// is lured onto a sibling page (issue 15): a guarded page never comes from
// the browser's cache once the session is gone, a forged cookie gets the
// login page, and another origin of the same site cannot POST to a
// proxied app with the cookie.
test('after logout a guarded page is asked for again, not shown from the cache', async () => {
  const email = uniqueEmail('cache');
  await signup(email);
  const page = await context.newPage();
  const seen = () => caddy.accessLog().filter((e) => e.request?.uri === '/vault/doc.html').length;

  await page.goto(`${SITE}/login?return=${encodeURIComponent('/vault/doc.html')}`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('secret123');
  await Promise.all([page.waitForURL(`${SITE}/vault/doc.html`), page.getByRole('button', { name: 'Sign in' }).click()]);
  assert.equal(await page.locator('#vault').textContent(), 'Private document');
  const first = await page.evaluate(async () => (await fetch('/vault/doc.html', { method: 'HEAD' })).headers.get('cache-control'));
  assert.equal(first, 'private, no-cache');

  // Log out through the API from this page (it clears the session cookie),
  // then open the page again as a person would.
  const out = await page.evaluate(async () => (await fetch('/api:e2e/auth/logout', { method: 'POST' })).status);
  assert.equal(out, 200);
  const before = seen();
  await page.goto(`${SITE}/vault/doc.html`);
  assert.equal(page.url(), `${SITE}/login?return=%2Fvault%2Fdoc.html`);
  assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Sign in');
  // Access-log lines are written as requests end; give the file a moment.
  for (let i = 0; i < 50 && seen() <= before; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(seen() > before, 'the server did not see the second visit: it came from the cache');

  // A tampered session cookie is no session: the login page.
  await context.addCookies([{ name: 'xano_auth', value: 'eyJhbGciOiJBMjU2S1cifQ.tampered.x.y.z', url: SITE }]);
  await page.goto(`${SITE}/vault/doc.html`);
  assert.equal(page.url(), `${SITE}/login?return=%2Fvault%2Fdoc.html`);
  await context.clearCookies();
  await page.close();
});

test('a same-site page cannot POST to a guarded app with the session cookie', async () => {
  const email = uniqueEmail('csrf');
  await signup(email);
  const page = await context.newPage();
  await page.goto(`${SITE}/login?return=%2F`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('secret123');
  await Promise.all([page.waitForURL(`${SITE}/`), page.getByRole('button', { name: 'Sign in' }).click()]);

  // From this origin, the app gets the user.
  const own = await page.evaluate(async () => {
    const r = await fetch('/app/transfer', { method: 'POST', body: new URLSearchParams({ to: 'friend' }) });
    return { status: r.status, body: await r.text() };
  });
  assert.equal(own.status, 200, own.body);
  assert.match(own.body, /^transferred for user \d+$/);

  // Another port of localhost is the same site: the browser sends the
  // SameSite=Lax cookie with its form POST. The guard refuses it.
  await page.goto(`${SIBLING}/`);
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${SITE}/app/transfer`),
    page.locator('#f button').click(),
  ]);
  assert.equal(resp.status(), 403);
  assert.equal(resp.request().headers()['sec-fetch-site'] ?? 'same-site', 'same-site');
  const body = await resp.json();
  assert.equal(body.code, 'ERROR_CODE_ACCESS_DENIED');
  assert.doesNotMatch(JSON.stringify(body), /transferred/);
  await context.clearCookies();
  await page.close();
});
