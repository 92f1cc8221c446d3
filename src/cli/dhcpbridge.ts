#!/usr/bin/env node
import { dhcpbridge } from './dhcpbridge/index.js';
import { ignoreClosedStdout, processIo } from './run.js';

ignoreClosedStdout();
process.exitCode = await dhcpbridge(process.argv.slice(2), processIo());
