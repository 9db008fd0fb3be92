// GPU checks through the public API (test/gpu/checks.js); they run where a GPU is usable and skip, saying why,
// where not (CI has none). The GPU machine runs the same checks with test/gpu/run.js.
import t from 'tap';

import * as quiver from '../lib/index';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { checks } = require('./gpu/checks') as { checks: (q: typeof quiver) => Record<string, () => unknown> };

const info = quiver.gpuInfo();

t.test('quiver.gpu describes the build and the device', async (t) => {
  t.equal(typeof quiver.gpu.available, 'boolean');
  t.equal(quiver.gpu.available, info.available);
  t.equal(typeof quiver.gpu.reason, 'string');
  if (!info.available) t.ok(info.reason.length > 0, `without a GPU the reason is given: ${info.reason}`);
});

t.test("device 'cuda' without a GPU warns once and runs on the CPU", { skip: info.available && 'a GPU is present' }, async (t) => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  const data = new Float32Array(64 * 8).map((_, i) => Math.sin(i));
  const index = await quiver.Index.train('PQ4x4', data, { dim: 8, device: 'cuda' });
  await index.add(data, undefined, { device: 'cuda' });
  const gpuRes = index.searchSync(data.subarray(0, 8), 3, { device: 'cuda' });
  const cpuRes = index.searchSync(data.subarray(0, 8), 3);
  t.same(Array.from(gpuRes.ids), Array.from(cpuRes.ids));
  await new Promise((r) => setImmediate(r));
  process.off('warning', onWarning);
  const ours = warnings.filter((w) => (w as Error & { code?: string }).code === 'QUIVER_NO_GPU');
  t.equal(ours.length, 1, 'one QUIVER_NO_GPU warning for the process');
  t.match(ours[0].message, /no GPU is usable/);
  t.throws(() => index.searchSync(data.subarray(0, 8), 3, { device: 'gpu' as never }), RangeError);
  t.throws(() => index.searchSync(data.subarray(0, 8), 3, { device: 1 as never }), TypeError);
  index.close();
});

const all = checks(quiver);
for (const [name, fn] of Object.entries(all)) {
  t.test(name, { skip: !info.available && `no usable GPU: ${info.reason}` }, async (t) => {
    const summary = await fn();
    t.pass(String(summary));
  });
}
