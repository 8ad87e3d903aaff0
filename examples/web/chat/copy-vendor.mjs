// Copies the browser bundles of the npm dependencies into public/vendor/, so the demo is a plain
// static folder that `wsbroker --static` (or any web server) can serve without a CDN.
//
//   npm ci && npm run build
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const vendorDir = path.join(here, 'public', 'vendor');

// [source relative to this folder, name in public/vendor/]
const bundles = [
  ['node_modules/@stomp/stompjs/bundles/stomp.umd.min.js', 'stomp.umd.min.js'],
  ['node_modules/sockjs-client/dist/sockjs.min.js', 'sockjs.min.js'],
  // The resume helper lives beside the demos (examples/web/lib), for any stompjs page.
  ['../lib/stomp-resume.js', 'stomp-resume.js'],
];

mkdirSync(vendorDir, { recursive: true });
for (const [from, to] of bundles) {
  copyFileSync(path.join(here, from), path.join(vendorDir, to));
  console.log(`copied ${from} -> public/vendor/${to}`);
}
