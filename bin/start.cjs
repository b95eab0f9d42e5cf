// Loads the command line once bin/cao-events.cjs has checked the Node version. The published
// package runs the compiled dist/src/cli.js; a checkout (where src/cli.ts exists) runs the
// TypeScript sources directly on Node's type stripping, so it never runs a stale build.
'use strict';
var fs = require('node:fs');
var path = require('node:path');
var url = require('node:url');

var source = path.join(__dirname, '..', 'src', 'cli.ts');
var entry = fs.existsSync(source) ? source : path.join(__dirname, '..', 'dist', 'src', 'cli.js');
import(url.pathToFileURL(entry).href).then(
  function (cli) {
    return cli.run(process.argv.slice(2));
  },
  function (err) {
    process.stderr.write('cao-events: cannot load ' + entry + ': ' + (err && err.message ? err.message : String(err)) + '\n');
    process.exitCode = 1;
  }
);
