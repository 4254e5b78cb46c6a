'use strict';

module.exports = function (RED) {
  // Sends msg.payload, a WhatsApp message object as Meta's Cloud API takes it
  // (`{to, type: "text", text: {body}}`, a template, media, interactive…),
  // from the node's phone number (or msg.phoneNumberId). wabridge checks it
  // before Meta sees it; its answer replaces msg.payload.
  function WabridgeSend(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const gateway = RED.nodes.getNode(config.gateway);

    node.on('input', async (msg, send, done) => {
      const phoneNumberId = String(msg.phoneNumberId || config.phoneNumberId || '').trim();
      if (!gateway || !phoneNumberId) {
        done(new Error('set the gateway and the phone number ID (or msg.phoneNumberId)'));
        return;
      }
      if (!msg.payload || typeof msg.payload !== 'object') {
        done(new Error('msg.payload must be a message object, such as {"to": "…", "type": "text", "text": {"body": "…"}}'));
        return;
      }
      node.status({ fill: 'yellow', shape: 'ring', text: 'sending' });
      try {
        const path = `/api/v1/phone-numbers/${encodeURIComponent(phoneNumberId)}/messages`;
        msg.payload = await gateway.client().request('POST', path, msg.payload);
        node.status({ fill: 'green', shape: 'dot', text: msg.payload && msg.payload.messageId ? 'sent' : 'answered' });
        send(msg);
        done();
      } catch (e) {
        node.status({ fill: 'red', shape: 'ring', text: (e.code || 'failed').slice(0, 40) });
        msg.error = { status: e.status, code: e.code, hint: e.hint };
        done(e);
      }
    });
  }
  RED.nodes.registerType('wabridge-send', WabridgeSend);
};
