/**
 * dnsmasq, one per network: what its callers use. config.ts builds its command line
 * and files, process.ts reads /proc, state.ts keeps what it holds, files.ts writes
 * atomically, driver.ts puts them together. Nothing in this folder imports this file.
 */
export {
  type DhcpHost,
  type DhcpNetwork,
  type DnsmasqOptions,
  dnsmasqArgs,
  hostLine,
  hostsFile,
  type NetworkFiles,
  networkFiles,
  optsFile,
} from './config.js';
export { type DnsmasqAction, DnsmasqDriver, RELOAD_DELAY_MS } from './driver.js';
export { runningPid } from './process.js';
export { loadedRecord } from './state.js';
