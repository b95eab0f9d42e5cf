/**
 * Preloaded with `--import` into a child process: records the URL of every module the process
 * loads and writes the list (one per line) to the file named by TRACE_MODULES_OUT at exit.
 */
import { writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const loaded: string[] = [];
registerHooks({
  load(url, context, nextLoad) {
    loaded.push(url);
    return nextLoad(url, context);
  },
});
process.on('exit', () => writeFileSync(process.env.TRACE_MODULES_OUT!, loaded.join('\n')));
