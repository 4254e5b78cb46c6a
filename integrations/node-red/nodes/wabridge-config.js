'use strict';
const { Client } = require('../lib/client');

module.exports = function (RED) {
  // One gateway and account: its URL, the account's API key (a credential,
  // kept out of the flow file) and this Node-RED's address as wabridge reaches it.
  function WabridgeConfig(config) {
    RED.nodes.createNode(this, config);
    this.url = config.url;
    this.publicUrl = config.publicUrl;
    this.trustSelfSigned = Boolean(config.trustSelfSigned);
    this.client = () => new Client({
      url: this.url,
      apiKey: (this.credentials && this.credentials.apiKey) || '',
      trustSelfSigned: this.trustSelfSigned,
    });
  }
  RED.nodes.registerType('wabridge-config', WabridgeConfig, {
    credentials: { apiKey: { type: 'password' } },
  });
};
