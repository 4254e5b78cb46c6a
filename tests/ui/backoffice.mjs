// The admin's journey through the backoffice in headless Chromium: log in, fill
// the setup form, watch the checklist follow a handshake and signed events, add
// an account, mint a connect link, see a delivery fail and redeliver it, find a
// message's timeline; a form posted from another origin is refused; a text with
// <script> renders as text; the 24-hour charts draw under the pages' CSP. A
// screenshot of each page goes to $OUTPUT_DIR.
//
// Started by tests/it/backoffice.rs, which runs the gateway, a fake Meta and a
// fake flow webhook and passes their addresses in the environment.

import { createHmac } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run this from cargo test)`);
  return v;
};
const BASE = env('WABRIDGE_URL');
const ADMIN_TOKEN = env('ADMIN_TOKEN');
const APP_ID = env('APP_ID');
const APP_SECRET = env('APP_SECRET');
const META_TOKEN = env('META_TOKEN');
const WABA = env('WABA_ID');
const RECEIVER = env('RECEIVER_URL');
const OUT = env('OUTPUT_DIR');
const EVENTS = `${BASE}/plugins/appmixer/whatsapp/events`;

mkdirSync(OUT, { recursive: true });
let step = 0;
const log = (what) => console.log(`ui: ${++step}. ${what}`);

function check(cond, what) {
  if (!cond) throw new Error(`expected: ${what}`);
}

async function waitFor(what, probe, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// --- Meta, as the gateway sees it ------------------------------------------

function signed(body, secret = APP_SECRET) {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
}

async function postWebhook(payload, { signature } = {}) {
  const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const headers = { 'content-type': 'application/json' };
  const sig = signature === undefined ? signed(body) : signature;
  if (sig) headers['x-hub-signature-256'] = sig;
  const resp = await fetch(EVENTS, { method: 'POST', headers, body });
  return resp.status;
}

const notification = (value) => ({
  object: 'whatsapp_business_account',
  entry: [{ id: WABA, changes: [{ field: 'messages', value }] }],
});
const metadata = { display_phone_number: '15550001111', phone_number_id: 'PN1' };

const inboundText = (id, text, name = 'Jana') => notification({
  messaging_product: 'whatsapp',
  metadata,
  contacts: [{ profile: { name }, wa_id: '420777123456', user_id: 'CZ.420777123456' }],
  messages: [{ from: '420777123456', id, timestamp: `${Math.floor(Date.now() / 1000)}`, type: 'text', text: { body: text } }],
});

const statusEvent = (id, status, extra = {}) => notification({
  messaging_product: 'whatsapp',
  metadata,
  statuses: [{ id, status, timestamp: `${Math.floor(Date.now() / 1000)}`, recipient_id: '420777000111', ...extra }],
});

async function handshake(token) {
  const q = new URLSearchParams({ 'hub.mode': 'subscribe', 'hub.verify_token': token, 'hub.challenge': '1158201444' });
  const resp = await fetch(`${EVENTS}?${q}`);
  return [resp.status, await resp.text()];
}

// --- The browser ------------------------------------------------------------

const profile = mkdtempSync(join(tmpdir(), 'wabridge-ui-'));
// A fresh profile each run (playwright passes it as --user-data-dir).
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1366, height: 900 },
});
const page = context.pages()[0] ?? await context.newPage();
let dialogs = 0;
page.on('dialog', (d) => { dialogs += 1; d.dismiss().catch(() => {}); });
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));
// A 401 or 403 page is logged as a failed load; anything else is a real error.
page.on('console', (m) => {
  if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text());
});

async function shot(name, target = page) {
  await target.screenshot({ path: join(OUT, `ui-${name}.png`), fullPage: true });
}

async function phoneShot(name, path) {
  const phone = await context.newPage();
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(`${BASE}${path}`);
  await shot(`${name}-phone`, phone);
  await phone.close();
}

const pill = (title) => page.locator('li.check', { hasText: title }).locator('.pill');
const flash = () => page.locator('.flash').first();

async function waitForPill(title, word, timeoutMs = 20000) {
  await waitFor(`checklist "${title}" to say ${word}`, async () => (await pill(title).textContent()).trim() === word, timeoutMs);
}

async function reloadUntil(what, probe, timeoutMs = 30000) {
  await waitFor(what, async () => {
    await page.reload();
    return probe();
  }, timeoutMs);
}

let evil;
try {
  log('a visitor opening the gateway\'s address is sent to the login page, which has its tab icon');
  await page.goto(`${BASE}/`);
  check(new URL(page.url()).pathname === '/admin/login', `login page, got ${page.url()}`);
  const icon = await page.evaluate(async () => {
    const href = document.querySelector('link[rel=icon]')?.href;
    if (!href) return 'no icon link';
    const img = new Image();
    img.src = href;
    try { await img.decode(); return `${img.naturalWidth}x${img.naturalHeight}`; } catch (e) { return `not drawn: ${e}`; }
  });
  check(icon === '32x32', `the icon draws, got ${icon}`);
  await shot('login');

  log('a wrong credential is refused on the page');
  await page.fill('#secret', 'not-the-token');
  await page.click('button[type=submit]');
  check((await flash().textContent()).includes('neither the admin token'), 'a login error');
  await shot('login-error');

  log('the admin token logs in; the session cookie is HttpOnly and SameSite=Strict');
  const before = (await context.cookies()).find((c) => c.name === 'wabridge_admin');
  await page.fill('#secret', ADMIN_TOKEN);
  await page.click('button[type=submit]');
  check(new URL(page.url()).pathname === '/admin/setup', `setup page, got ${page.url()}`);
  const cookie = (await context.cookies()).find((c) => c.name === 'wabridge_admin');
  check(cookie && cookie.httpOnly && cookie.sameSite === 'Strict', `a strict cookie, got ${JSON.stringify(cookie)}`);
  check(before && before.value !== cookie.value, 'a new session id at login');

  log('the checklist starts with everything to do');
  await waitForPill('App ID and App Secret', 'To do');
  await waitForPill("Meta's verification handshake", 'To do');

  log('the setup form: App ID, App Secret, a generated verify token');
  await page.fill('#clientId', APP_ID);
  await page.fill('#clientSecret', APP_SECRET);
  await page.click('[data-generate=verifyToken]');
  const verifyToken = await page.inputValue('#verifyToken');
  check(/^[A-Za-z0-9_-]{43}$/.test(verifyToken), `a 256-bit token, got ${verifyToken}`);
  await page.click('#settings-form button[type=submit]');
  check((await flash().textContent()).includes('Settings saved'), 'saved');
  check((await page.textContent('#secret-state')).trim() === 'Set', 'the secret shows as set');
  check((await page.inputValue('#clientSecret')) === '', 'the secret is write-only');
  await waitForPill('App ID and App Secret', 'Done');
  const shown = await page.locator('.copyitem', { hasText: 'Verify token' }).locator('code').textContent();
  check(shown.trim() === verifyToken, 'the verify token is ready to copy');
  const callback = await page.locator('.copyitem', { hasText: 'Callback URL' }).locator('code').textContent();
  check(callback.trim().endsWith('/plugins/appmixer/whatsapp/events'), `the callback URL, got ${callback}`);

  log('a handshake with a wrong token shows up on the checklist, then a right one');
  check((await handshake('wrong'))[0] === 403, 'a wrong token is refused');
  await waitForPill("Meta's verification handshake", 'Fix');
  const [status, challenge] = await handshake(verifyToken);
  check(status === 200 && challenge === '1158201444', 'the challenge is echoed');
  await waitForPill("Meta's verification handshake", 'Done');

  log('a signed event and a bad signature show up on the checklist');
  check(await postWebhook(inboundText('wamid.ui.script', '<script>alert(1)</script> hi', '<img src=x onerror=alert(2)>')) === 200, 'signed event accepted');
  check(await postWebhook(inboundText('wamid.ui.bad', 'x'), { signature: signed('x', 'some-other-secret') }) === 401, 'bad signature refused');
  await waitForPill('Signed events from Meta', 'Done');
  await waitForPill('Signature failures in the last 24 h', 'Check');
  await shot('setup');
  await phoneShot('setup', '/admin/setup');

  log('an account is added by pasting a System User token');
  await page.click('nav >> text=Accounts');
  await page.fill('#accessToken', META_TOKEN);
  await page.click('#add-account button[type=submit]');
  check((await flash().textContent()).includes('added'), 'account added');
  const apiKey = (await page.textContent('#flash-secret')).trim();
  check(apiKey.startsWith('wbk_'), `an API key, got ${apiKey}`);
  check(await page.locator('#accounts-table', { hasText: WABA }).count() === 1, 'the account with its WABA');
  await shot('accounts-added');

  log("the guide's smoke test: hello_world from the account's number");
  await page.click('text=Test sending…');
  await shot('test-send');
  await page.fill('#to', '+420 777 123 456');
  await page.click('#test-send button[type=submit]');
  check((await flash().textContent()).includes('Meta accepted the template "hello_world"'), 'the template was sent');
  check((await page.textContent('#current-status')).includes('no status yet'), 'the timeline waits for Meta');
  await shot('test-send-sent');
  await page.goto(`${BASE}/admin/accounts`);

  log('a connect link is minted for a customer');
  await page.click('#mint-link');
  const link = (await page.textContent('#flash-secret')).trim();
  check(/\/connect\?link=wbl_[A-Za-z0-9_-]+$/.test(link), `a connect link, got ${link}`);
  await shot('accounts-link');
  await phoneShot('accounts', '/admin/accounts');

  log('a flow tool registers a listener; its receiver fails every attempt');
  const created = await fetch(`${BASE}/api/v1/listeners`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ wabaId: WABA, event: 'messages', url: `${RECEIVER}/hook` }),
  });
  check(created.status === 201, `listener created, got ${created.status}`);
  const listener = (await created.json()).id;
  check(await postWebhook(inboundText('wamid.ui.1', 'hello from the browser test')) === 200, 'event accepted');

  log('the delivery fails after its retries, and is redelivered');
  await page.click('nav >> text=Listeners');
  check(await page.locator('#listeners-table', { hasText: `${RECEIVER}/hook` }).count() === 1, 'the listener is listed');
  await page.click(`a[href="/admin/listeners/${listener}"]`);
  await reloadUntil('a failed delivery', async () => await page.locator('#deliveries-table .pill', { hasText: 'failed' }).count() === 1);
  await page.goto(`${BASE}/admin/listeners`);
  await shot('listeners');
  await page.click('#check-subscriptions');
  check(await page.locator('#subscriptions-table .pill', { hasText: 'Subscribed' }).count() === 1, "the trigger's WABA is subscribed with Meta");
  await shot('subscriptions');
  await phoneShot('subscriptions', '/admin/subscriptions');
  await page.goto(`${BASE}/admin/listeners/${listener}`);
  check((await page.locator('#deliveries-table').textContent()).includes('500'), 'the response code');
  await shot('listener-failed');
  await page.click('text=Redeliver all failed (1)');
  check((await flash().textContent()).includes('1 failed delivery queued again'), 'redelivery queued');
  await reloadUntil('the redelivery to succeed', async () => await page.locator('#deliveries-table .pill', { hasText: 'succeeded' }).count() === 1);
  log('the listener page charts its attempts of the last 24 hours');
  const charted = (series) => page.evaluate((s) => Number(document.querySelector(`#deliveries-chart polyline[data-series="${s}"]`)?.dataset.total ?? 0), series);
  await reloadUntil('the chart to count the redelivery', async () => await charted('delivered') >= 1);
  check(await charted('failed') >= 4, 'the failed attempts charted (1 + 3 retries)');
  const box = await page.locator('#deliveries-chart').boundingBox();
  check(box && box.width > 300 && box.height > 100, `the chart is drawn, got ${JSON.stringify(box)}`);
  await shot('listener-redelivered');
  await phoneShot('listener', `/admin/listeners/${listener}`);

  log('a listener is paused and resumed');
  await page.click('button:has-text("Pause")');
  check(await page.locator('.facts .pill', { hasText: 'Paused' }).count() === 1, 'paused');
  await page.click('button:has-text("Resume")');
  check(await page.locator('.facts .pill', { hasText: 'Active' }).count() === 1, 'active again');

  log("a message's timeline, a search by recipient, and the silent drops");
  for (const [id, st, extra] of [
    ['wamid.out.1', 'sent'], ['wamid.out.1', 'delivered'], ['wamid.out.1', 'read'],
    ['wamid.out.2', 'sent'],
    ['wamid.out.2', 'failed', { errors: [{ code: 131047, title: 'Re-engagement message', error_data: { details: 'More than 24 hours have passed since the recipient last replied.' } }] }],
    ['wamid.out.3', 'sent'],
  ]) {
    check(await postWebhook(statusEvent(id, st, extra)) === 200, `status ${id} ${st}`);
  }
  await page.click('nav >> text=Messages');
  await page.fill('#q', 'wamid.out.2');
  await page.click('button:has-text("Search")');
  check(new URL(page.url()).pathname === '/admin/messages/wamid%2Eout%2E2', `the timeline, got ${page.url()}`);
  check((await page.textContent('#current-status')).trim() === 'failed', 'failed');
  const timeline = await page.textContent('#timeline');
  check(timeline.includes('131047') && timeline.includes('24 hours'), 'the error and the guide\'s hint');
  await shot('message-timeline');
  await phoneShot('message', '/admin/messages/wamid.out.2');
  await page.goto(`${BASE}/admin/messages?q=${encodeURIComponent('+420 777 000 111')}&minutes=0`);
  const found = await page.locator('.card', { hasText: 'Find a message' }).locator('tbody tr').count();
  check(found === 3, `3 messages to the recipient, got ${found}`);
  const silent = await page.textContent('#silent-list');
  check(silent.includes('wamid.out.3') && !silent.includes('wamid.out.1') && !silent.includes('wamid.out.2'), 'only the undelivered message');
  await shot('messages');

  log('events: a <script> from a WhatsApp user is text, and a quarantined body is listed');
  check(await postWebhook('this is not json') === 200, 'quarantined');
  await page.click('nav >> text=Events');
  check(await page.locator('#events-table td', { hasText: '<script>alert(1)</script> hi' }).count() === 1, 'the script shown as text');
  check(await page.locator('#events-table td', { hasText: '<img src=x onerror=alert(2)>' }).count() === 1, 'the name shown as text');
  check(await page.locator('#events-table script').count() === 0 && await page.locator('#events-table img').count() === 0, 'no element from user text');
  check(await page.locator('#quarantine-table', { hasText: 'not valid JSON' }).count() === 1, 'the quarantine');
  check(await page.locator('#events-chart polyline[data-series="whatsapp.message.received"]').count() === 1, 'events charted by type');
  check((await page.locator('#events-chart title').textContent()).includes('whatsapp.message.status'), 'the chart says its totals');
  await shot('events');
  await phoneShot('events', '/admin/events');

  log('a form posted from another origin is refused');
  evil = createServer((req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(`<form id=f method=post action="${BASE}/admin/setup">
      <input name=clientId value=666><input name=csrf value=guess></form>
      <script>document.getElementById('f').submit()</script>`);
  });
  await new Promise((r) => evil.listen(0, '127.0.0.1', r));
  const evilUrl = `http://127.0.0.1:${evil.address().port}/`;
  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${BASE}/admin/setup` && r.request().method() === 'POST'),
    page.goto(evilUrl),
  ]);
  check(answer.status() === 403, `403, got ${answer.status()}`);
  await page.waitForURL(`${BASE}/admin/setup`);
  check((await page.textContent('h1')).includes('Request refused'), 'the refusal page');
  await shot('csrf-refused');
  await page.goto(`${BASE}/admin/setup`);
  check((await page.inputValue('#clientId')) === APP_ID, 'the App ID is unchanged');

  log('logging out ends the session');
  await page.click('text=Log out');
  check(new URL(page.url()).pathname === '/admin/login', 'back at the login page');
  await page.goto(`${BASE}/admin/accounts`);
  check(new URL(page.url()).pathname === '/admin/login', 'the old session is gone');

  check(dialogs === 0, `no script from user data ran (dialogs: ${dialogs})`);
  check(pageErrors.length === 0, `no errors in the pages: ${pageErrors.join('; ')}`);
  console.log(`ui: all ${step} steps passed; screenshots in ${OUT}`);
} catch (e) {
  await shot('failure').catch(() => {});
  console.error(`ui: step ${step} failed: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  evil?.close();
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
