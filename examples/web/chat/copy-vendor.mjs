// Copies the browser bundles of the npm dependencies into public/vendor/, so the demo is a plain
// static folder that `wsbroker --static` (or any web server) can serve without a CDN.
//
//   npm ci && npm run build
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const vendorDir = path.join(here, 'public', 'vendor');

const bundles = [
  ['@stomp/stompjs/bundles/stomp.umd.min.js', 'stomp.umd.min.js'],
  ['sockjs-client/dist/sockjs.min.js', 'sockjs.min.js'],
];

mkdirSync(vendorDir, { recursive: true });
for (const [from, to] of bundles) {
  const source = path.join(here, 'node_modules', from);
  copyFileSync(source, path.join(vendorDir, to));
  console.log(`copied ${from} -> public/vendor/${to}`);
}
