'use strict';
// The wabridge flow API as the nodes use it: JSON over HTTP(S) with the
// account's API key, and wabridge's `{error: {code, message, hint}}` turned
// into an Error whose message a flow author can act on.

const http = require('node:http');
const https = require('node:https');

const TIMEOUT_MS = 30000;
const MAX_ANSWER = 16 * 1024 * 1024;

class WabridgeError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    const what = e.message || `wabridge answered ${status}`;
    super(e.hint ? `${what} (${e.hint})` : what);
    this.name = 'WabridgeError';
    this.status = status;
    this.code = e.code || null;
    this.hint = e.hint || null;
  }
}

/** A client for one gateway and account. */
class Client {
  /**
   * @param {{url: string, apiKey: string, trustSelfSigned?: boolean}} options
   */
  constructor({ url, apiKey, trustSelfSigned = false }) {
    this.base = new URL(String(url || '').replace(/\/+$/, '') + '/');
    if (!['http:', 'https:'].includes(this.base.protocol)) {
      throw new Error(`the gateway URL must be http(s), got ${url}`);
    }
    this.apiKey = apiKey;
    this.trustSelfSigned = trustSelfSigned;
  }

  /** Calls `method path` with an optional JSON body; resolves to the parsed answer. */
  request(method, path, body) {
    const target = new URL(path.replace(/^\//, ''), this.base);
    const payload = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const headers = { accept: 'application/json', authorization: `Bearer ${this.apiKey}` };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = payload.length;
    }
    const transport = target.protocol === 'https:' ? https : http;
    const options = { method, headers, timeout: TIMEOUT_MS };
    if (target.protocol === 'https:' && this.trustSelfSigned) {
      // wabridge's own certificate on a first install: the admin ticked the
      // box for it, knowing the connection is then not authenticated.
      options.rejectUnauthorized = false;
    }
    return new Promise((resolve, reject) => {
      const req = transport.request(target, options, (res) => {
        const chunks = [];
        let size = 0;
        res.on('data', (c) => {
          size += c.length;
          if (size > MAX_ANSWER) {
            req.destroy(new Error(`wabridge's answer to ${method} ${path} is larger than ${MAX_ANSWER} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed = null;
          let unreadable = false;
          try { parsed = text ? JSON.parse(text) : null; } catch { unreadable = true; }
          const ok = res.statusCode >= 200 && res.statusCode < 300;
          if (ok && unreadable) {
            // Not wabridge (a proxy's page, another service on that port).
            reject(new Error(`${target.origin} answered ${method} ${path} with something other than JSON: is the gateway URL right?`));
          } else if (ok) resolve(parsed);
          else reject(new WabridgeError(res.statusCode, parsed));
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`wabridge did not answer ${method} ${path} within ${TIMEOUT_MS / 1000} s`)));
      req.on('error', reject);
      req.end(payload || undefined);
    });
  }
}

module.exports = { Client, WabridgeError };
