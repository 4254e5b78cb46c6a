'use strict';
// n8n finds a node's or credential's `file:` icon beside its compiled file:
// each .svg under credentials/ and nodes/ goes to the same place in dist/.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
function copy(dir) {
  for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) copy(rel);
    else if (entry.name.endsWith('.svg')) {
      fs.mkdirSync(path.join(root, 'dist', dir), { recursive: true });
      fs.copyFileSync(path.join(root, rel), path.join(root, 'dist', rel));
    }
  }
}
copy('credentials');
copy('nodes');
