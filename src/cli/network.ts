#!/usr/bin/env node
import { runService } from './network/index.js';
import { processIo } from './run.js';

process.exitCode = await runService(process.argv.slice(2), processIo());
