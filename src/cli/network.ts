#!/usr/bin/env node
import { runService, useDaemonHeap } from './network/index.js';
import { processIo } from './run.js';

useDaemonHeap(process.execArgv);
process.exitCode = await runService(process.argv.slice(2), processIo());
