// The official @xano/js-sdk against xanoauth: only the base URL differs
// from a Xano-hosted API group.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { XanoNodeClient, XanoRequestError } from '@xano/js-sdk';
import { startCaddy, SITE, uniqueEmail } from './lib.mjs';

let caddy;
before(async () => { caddy = await startCaddy(); });
after(async () => { await caddy?.stop(); });

const apiGroupBaseUrl = `${SITE}/api:e2e`;

// sdkError runs fn, which must fail the way the SDK fails: it rejects with
// a XanoRequestError whose response carries Xano's envelope.
async function sdkError(fn) {
  try {
    await fn();
  } catch (err) {
    // XanoRequestError is compiled to ES5, where extending Error loses the
    // prototype: `instanceof` is false, so SDK users (and we) rely on its
    // getResponse() instead.
    assert.equal(typeof err.getResponse, 'function', `not a XanoRequestError: ${err}`);
    assert.equal(typeof XanoRequestError, 'function');
    assert.equal(err.message, 'There was an error with your request');
    const resp = err.getResponse();
    return { status: resp.getStatusCode(), body: resp.getBody(), headers: resp.getHeaders() };
  }
  assert.fail('the SDK did not raise an error');
}

test('signup, login, setAuthToken, auth/me', async () => {
  const xano = new XanoNodeClient({ apiGroupBaseUrl });
  const email = uniqueEmail('sdk');

  const signup = await xano.post('/auth/signup', { name: 'Ann', email: `  ${email.toUpperCase()} `, password: 'secret123' });
  assert.equal(signup.getStatusCode(), 200);
  const { authToken } = signup.getBody();
  assert.match(authToken, /^eyJhbGciOiJBMjU2S1ciLCJlbmMiOiJBMjU2Q0JDLUhTNTEyIiwiemlwIjoiREVGIn0\.[\w-]+\.[\w-]+\.[\w-]+\.[\w-]+$/);
  assert.deepEqual(Object.keys(signup.getBody()), ['authToken']);
  assert.match(signup.getHeaders()['content-type'], /^application\/json; charset=utf-8$/);

  const login = await xano.post('/auth/login', { email, password: 'secret123' });
  const token = login.getBody().authToken;
  assert.ok(token && token !== authToken);

  assert.equal(xano.hasAuthToken(), false);
  xano.setAuthToken(token);
  assert.equal(xano.hasAuthToken(), true);
  const me = await xano.get('/auth/me');
  assert.equal(me.getStatusCode(), 200);
  const body = me.getBody();
  assert.deepEqual(Object.keys(body), ['id', 'created_at', 'name', 'email', 'role']);
  assert.equal(body.email, email);
  assert.equal(body.name, 'Ann');
  assert.equal(body.role, 'member');
  assert.ok(Number.isInteger(body.id) && body.id > 0);
  assert.ok(Math.abs(body.created_at - Date.now()) < 60_000, `created_at ${body.created_at} is not ms now`);

  // The SDK's response object prefix works on our bodies too.
  assert.equal(me.getBody('u_').u_email, email);

  // setAuthToken(null) logs the client out: auth/me is refused.
  xano.setAuthToken(null);
  const anon = await sdkError(() => xano.get('/auth/me'));
  assert.equal(anon.status, 401);
  assert.deepEqual(anon.body, { code: 'ERROR_CODE_UNAUTHORIZED', message: 'Unauthorized - Authentication Required', payload: '' });
});

test('wrong password: the SDK raises the Invalid Credentials envelope', async () => {
  const xano = new XanoNodeClient({ apiGroupBaseUrl });
  const email = uniqueEmail('sdk-wrong');
  await xano.post('/auth/signup', { name: 'Bob', email, password: 'secret123' });

  const wrong = await sdkError(() => xano.post('/auth/login', { email, password: 'wrong1234' }));
  assert.equal(wrong.status, 403);
  assert.deepEqual(wrong.body, { code: 'ERROR_CODE_ACCESS_DENIED', message: 'Invalid Credentials.', payload: '' });

  // An unknown account gets exactly the same answer.
  const unknown = await sdkError(() => xano.post('/auth/login', { email: uniqueEmail('nobody'), password: 'secret123' }));
  assert.deepEqual(unknown, { ...unknown, status: 403, body: wrong.body });
});

test('duplicate signup and input errors: the SDK exposes code, message and payload', async () => {
  const xano = new XanoNodeClient({ apiGroupBaseUrl });
  const email = uniqueEmail('sdk-dup');
  await xano.post('/auth/signup', { name: 'Cy', email, password: 'secret123' });

  const dup = await sdkError(() => xano.post('/auth/signup', { name: 'Cy', email, password: 'secret123' }));
  assert.equal(dup.status, 403);
  assert.deepEqual(dup.body, { code: 'ERROR_CODE_ACCESS_DENIED', message: 'This account is already in use.', payload: '' });

  const missing = await sdkError(() => xano.post('/auth/signup', { email: uniqueEmail('sdk-missing') }));
  assert.equal(missing.status, 400);
  assert.deepEqual(missing.body, { code: 'ERROR_CODE_INPUT_ERROR', message: 'Missing param: password', payload: { param: 'password' } });

  const weak = await sdkError(() => xano.post('/auth/signup', { email: uniqueEmail('sdk-weak'), password: 'short1' }));
  assert.equal(weak.status, 400);
  assert.deepEqual(weak.body, {
    code: 'ERROR_CODE_INPUT_ERROR',
    message: 'Input does not meet minimum length requirement of 8 characters',
    payload: { param: 'password' },
  });
});

test('the token from the SDK opens the guarded area', async () => {
  const xano = new XanoNodeClient({ apiGroupBaseUrl });
  const email = uniqueEmail('sdk-guard');
  const { authToken } = (await xano.post('/auth/signup', { name: 'Di', email, password: 'secret123' })).getBody();
  const ok = await fetch(`${SITE}/members/`, { headers: { Authorization: `Bearer ${authToken}` } });
  assert.equal(ok.status, 200);
  assert.match(await ok.text(), /Hello member \d+ \(member\)/);
  // The js-sdk's own cookie name (XanoCookieStorage keeps "AuthToken") is
  // not read by this guard unless configured; the session cookie is.
  const viaCookie = await fetch(`${SITE}/members/`, { headers: { Cookie: `xano_auth=${authToken}` } });
  assert.equal(viaCookie.status, 200);
});
