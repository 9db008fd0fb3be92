// A progress display for suite runs: a cli-progress bar on a terminal, one line per step elsewhere (CI logs).
import * as cliProgress from 'cli-progress';

import type { SearchParams, SuiteEvent } from './types';

function describeParams(params: SearchParams): string {
  return Object.entries(params)
    .map(([key, value]) => `${key}=${value}`)
    .join(' ');
}

/** Returns an onEvent handler for runSuite that draws progress on `stream` (default stderr). */
export function suiteProgress(stream: NodeJS.WriteStream = process.stderr): (event: SuiteEvent) => void {
  const bar = stream.isTTY
    ? new cliProgress.SingleBar(
        { format: '{dataset} [{bar}] {value}/{total} {what}', hideCursor: true, clearOnComplete: true, stream, etaBuffer: 4 },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let dataset = '';
  const say = (what: string, value?: number) => {
    if (bar) bar.update(value ?? bar.getProgress() * bar.getTotal(), { what, dataset });
    else stream.write(`${dataset}: ${what}\n`);
  };
  return (event) => {
    switch (event.type) {
      case 'start':
        dataset = event.dataset;
        if (bar) bar.start(event.total, 0, { what: 'starting', dataset });
        else stream.write(`${dataset}: ${event.total} configurations to measure\n`);
        break;
      case 'build':
        say(`building ${event.system} ${event.spec}`);
        break;
      case 'search':
        say(`measured ${event.system} ${event.spec} ${describeParams(event.params)}`.trim(), event.done);
        break;
      case 'skip':
        if (bar) bar.update(event.done, { what: `skipped ${event.system}`, dataset });
        stream.write(`${bar ? '\n' : ''}skip ${event.system}${event.spec ? ' ' + event.spec : ''}: ${event.reason}\n`);
        break;
      case 'end':
        bar?.stop();
        break;
    }
  };
}
