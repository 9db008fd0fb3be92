'use strict';
// Runs test/gpu/checks.js with plain Node (the GPU machine has no node_modules): TAP-style lines, exit 1 on
// any failure. Usage: node test/gpu/run.js   (QUIVER_ADDON may point at a CUDA-enabled quiver.node)
const quiver = require('../../dist/cjs/index.js');
const { checks } = require('./checks');

(async () => {
  const list = Object.entries(checks(quiver));
  console.log(`TAP version 14\n1..${list.length}`);
  let failed = 0;
  for (const [i, [name, fn]] of list.entries()) {
    try {
      const summary = await fn();
      console.log(`ok ${i + 1} - ${name}${summary ? ` # ${summary}` : ''}`);
    } catch (e) {
      ++failed;
      console.log(`not ok ${i + 1} - ${name}\n  ---\n  ${String(e && e.stack ? e.stack : e).split('\n').join('\n  ')}\n  ...`);
    }
  }
  console.log(`# ${list.length - failed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
})();
