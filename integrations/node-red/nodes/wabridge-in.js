'use strict';
const { Webhook } = require('standardwebhooks');

// Bodies wabridge sends are Meta's events, well under this; more is refused.
const MAX_BODY = 4 * 1024 * 1024;
// Standard Webhooks ids seen lately: wabridge delivers at least once, so a
// retry of a delivery that reached us is answered but not output again.
const REMEMBERED_IDS = 10000;

// How long a removed node waits for a registration under way (Node-RED
// gives up on a close after 15 s).
const CLOSE_WAIT_MS = 8000;
// Registration retries after 5 s, 15 s, then every minute.
const RETRY_MS = [5000, 15000, 60000];

const list = (text) => [...new Set(String(text || '').split(',').map((s) => s.trim()).filter(Boolean))];
const sameUrl = (a, b) => {
  try { return new URL(a).href === new URL(b).href; } catch { return false; }
};
const sameSet = (a, b) => a.length === b.length && [...a].sort().join() === [...b].sort().join();

module.exports = function (RED) {
  // Node-RED's editor API, on the same root as the flows' routes by default,
  // parses JSON bodies before any route sees them; the signature covers the
  // raw bytes. So, as Node-RED's own `http in` does for its raw bodies, one
  // middleware at the top of the root app reads ours first.
  const rawPaths = new Set();
  const captureRaw = (req, res, next) => {
    const pathname = req._parsedUrl ? req._parsedUrl.pathname : new URL(req.url, 'http://x').pathname;
    if (req.method !== 'POST' || !rawPaths.has(pathname)) return next();
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        res.statusCode = 413;
        res.end();
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (res.writableEnded) return;
      req.wabridgeBody = Buffer.concat(chunks);
      // body-parser leaves a request marked read alone.
      req._body = true;
      next();
    });
    req.on('error', next);
  };
  let root = RED.httpNode;
  while (root && root.parent) root = root.parent;
  if (root && root._router) {
    root.use(captureRaw);
    const stack = root._router.stack;
    const at = stack.findIndex((layer) => layer.handle === captureRaw);
    stack.unshift(stack.splice(at, 1)[0]);
  } else {
    RED.log.error('wabridge in: this Node-RED\'s HTTP app is not the Express 4 the nodes know; deliveries cannot be verified and will be refused');
  }

  function WabridgeIn(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const gateway = RED.nodes.getNode(config.gateway);
    const wabaId = String(config.wabaId || '').trim();
    const events = list(config.events || 'whatsapp.message.received');
    const phoneNumberIds = list(config.phoneNumberIds);
    const path = `/wabridge/${node.id}`;
    let verifier = null;
    let listenerId = null;
    const seen = new Map();

    if (!gateway || !gateway.publicUrl || !wabaId) {
      node.status({ fill: 'red', shape: 'ring', text: 'set the gateway, its public URL and the WABA' });
      return;
    }
    const nodeRoot = (RED.settings.httpNodeRoot || '/').replace(/\/+$/, '');
    const url = gateway.publicUrl.replace(/\/+$/, '') + nodeRoot + path;

    const receive = (req, res) => {
      if (!req.wabridgeBody) {
        res.status(500).send('the raw body was not captured');
        return;
      }
      if (!verifier) {
        // Not registered yet: wabridge retries later.
        res.status(503).end();
        return;
      }
      let event;
      try {
        event = verifier.verify(req.wabridgeBody.toString('utf8'), req.headers);
      } catch (e) {
        node.warn(`refused a delivery whose signature does not verify: ${e.message}`);
        res.status(401).end();
        return;
      }
      res.status(204).end();
      const id = req.headers['webhook-id'];
      if (seen.has(id)) return;
      seen.set(id, true);
      if (seen.size > REMEMBERED_IDS) seen.delete(seen.keys().next().value);
      node.send({ payload: event, topic: event && event.type, webhookId: id });
    };
    rawPaths.add(nodeRoot + path);
    RED.httpNode.post(path, receive);

    // One listener per node, found again by its URL after a restart or a
    // redeploy, so deliveries queued meanwhile still reach this node.
    // wabridge keeps a listener's URL normalised (WHATWG), so URLs are compared
    // as parsed.
    const fits = (l) => l.wabaId === wabaId && sameSet(l.events || [], events)
      && sameSet((l.filters && l.filters.phoneNumberIds) || [], phoneNumberIds)
      && !l.stoppedReason;
    const register = async () => {
      const client = gateway.client();
      const { listeners = [] } = (await client.request('GET', '/api/v1/listeners')) || {};
      const mine = listeners.filter((l) => sameUrl(l.url, url));
      const kept = mine.find(fits);
      let listener;
      if (kept) {
        listener = await client.request('GET', `/api/v1/listeners/${encodeURIComponent(kept.id)}`);
      } else {
        // The new one first: events arriving while the old one goes are
        // queued for it.
        const body = { wabaId, events, url };
        if (phoneNumberIds.length) body.filters = { phoneNumberIds };
        listener = await client.request('POST', '/api/v1/listeners', body);
      }
      if (!listener || typeof listener.id !== 'string' || typeof listener.secret !== 'string') {
        throw new Error('wabridge answered without a listener id and secret');
      }
      listenerId = listener.id;
      verifier = new Webhook(listener.secret);
      // Registered with other settings, stopped by a 410, or a duplicate.
      for (const old of mine.filter((l) => l.id !== listener.id)) {
        await client.request('DELETE', `/api/v1/listeners/${encodeURIComponent(old.id)}`)
          .catch((e) => { if (e.status !== 404) throw e; });
      }
      return listener;
    };

    let closed = false;
    let retry = null;
    let registered = null;
    const attempt = (failures) => {
      node.status({ fill: 'yellow', shape: 'ring', text: 'registering' });
      registered = register().then((listener) => {
        node.status({ fill: 'green', shape: 'dot', text: `listening (${listener.id})` });
      }).catch((e) => {
        if (closed) return;
        // The gateway may be starting, or briefly unreachable: try again,
        // less often the longer it lasts.
        const wait = RETRY_MS[Math.min(failures, RETRY_MS.length - 1)];
        node.status({ fill: 'red', shape: 'ring', text: `retry in ${wait / 1000} s: ${e.message}`.slice(0, 60) });
        node.error(`cannot register the listener at wabridge (retrying in ${wait / 1000} s): ${e.message}`);
        retry = setTimeout(() => attempt(failures + 1), wait);
      });
    };
    attempt(0);

    node.on('close', (removed, done) => {
      closed = true;
      clearTimeout(retry);
      rawPaths.delete(nodeRoot + path);
      const router = RED.httpNode._router;
      if (router) {
        router.stack = router.stack.filter((layer) => !(layer.route && layer.route.path === path));
      }
      // Redeployed or restarted: the listener stays for the next instance.
      if (!removed) {
        done();
        return;
      }
      // Removed from the flows: the listener goes too, once a registration
      // under way has settled, within Node-RED's close timeout.
      const settled = Promise.race([registered, new Promise((r) => setTimeout(r, CLOSE_WAIT_MS))]);
      settled
        .then(() => listenerId
          && gateway.client().request('DELETE', `/api/v1/listeners/${encodeURIComponent(listenerId)}`))
        .catch((e) => node.warn(`cannot remove the listener at wabridge: ${e.message}`))
        .finally(() => done());
    });
  }
  RED.nodes.registerType('wabridge-in', WabridgeIn);
};
