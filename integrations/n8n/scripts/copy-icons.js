'use strict';
// n8n finds a node's or credential's `file:` icon next to its compiled file:
// the one logo goes beside each of them in dist/.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const logo = path.join(root, 'icons', 'wabridge.svg');
for (const dir of ['dist/credentials', 'dist/nodes/Wabridge', 'dist/nodes/WabridgeTrigger']) {
  fs.mkdirSync(path.join(root, dir), { recursive: true });
  fs.copyFileSync(logo, path.join(root, dir, 'wabridge.svg'));
}
