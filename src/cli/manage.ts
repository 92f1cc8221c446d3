#!/usr/bin/env node
import { manage } from './manage/index.js';
import { ignoreClosedStdout, processIo } from './run.js';

ignoreClosedStdout();
process.exitCode = await manage(process.argv.slice(2), processIo());
