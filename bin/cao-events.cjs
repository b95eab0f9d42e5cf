#!/usr/bin/env node
// The `cao-events` command. This first file is plain ES5 CommonJS on purpose: it must parse and
// run on any Node, so that an old one gets one clear sentence instead of a syntax or loader
// error. Only then is the real command line loaded (bin/start.cjs → dist/src/cli.js).
'use strict';
// The minimum comes from package.json's "engines" (">=22.19"), the one place it is written.
var engines = /(\d+)\.(\d+)/.exec(require('../package.json').engines.node);
var REQUIRED = [Number(engines[1]), Number(engines[2])];
var found = process.versions.node;
var parts = found.split('.');
var major = Number(parts[0]);
var minor = Number(parts[1]);
if (major < REQUIRED[0] || (major === REQUIRED[0] && minor < REQUIRED[1])) {
  process.stderr.write(
    'cao-events needs Node \u2265 ' + REQUIRED.join('.') + ' (found ' + found + '). ' +
      'Install Node.js ' + REQUIRED.join('.') + ' or later (https://nodejs.org) and run it again.\n'
  );
  process.exit(1);
}
require('./start.cjs');
