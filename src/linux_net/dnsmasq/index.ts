/** dnsmasq, one per network: what its callers use. Nothing in this folder imports this file. */
export * from './driver.js';
