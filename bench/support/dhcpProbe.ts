/**
 * Run inside a VM namespace (`ip netns exec VM node dhcpProbe.js`): for each MAC read
 * from stdin, broadcasts a DHCPDISCOVER with that client hardware address every 2 ms
 * until a DHCPOFFER answers it, and prints `{"mac","address","ms"}` (ms counted from
 * the line's arrival). A client like udhcpc retries only once a second, which would
 * measure its timer instead of the server; this measures when the server knows the MAC.
 */

import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';

const RETRY_MS = 2;
const GIVE_UP_MS = 5_000;
const COOKIE = 0x63825363;

function discover(mac: string, xid: number): Buffer {
  const packet = Buffer.alloc(244);
  packet[0] = 1; // BOOTREQUEST
  packet[1] = 1; // Ethernet
  packet[2] = 6;
  packet.writeUInt32BE(xid, 4);
  packet.writeUInt16BE(0x8000, 10); // broadcast the answer: the client has no address yet
  Buffer.from(mac.replace(/:/g, ''), 'hex').copy(packet, 28);
  packet.writeUInt32BE(COOKIE, 236);
  packet.set([53, 1, 1, 255], 240); // DHCP message type DISCOVER, end
  return packet;
}

/** The offered address, if `packet` is a DHCPOFFER for `xid`. */
function offered(packet: Buffer, xid: number): string | undefined {
  if (packet.length < 240 || packet[0] !== 2 || packet.readUInt32BE(4) !== xid || packet.readUInt32BE(236) !== COOKIE) return undefined;
  for (let at = 240; at + 1 < packet.length && packet[at] !== 255; ) {
    const [code, length] = [packet[at]!, packet[at + 1]!];
    if (code === 53) return packet[at + 2] === 2 ? [...packet.subarray(16, 20)].join('.') : undefined;
    at += code === 0 ? 1 : 2 + length;
  }
  return undefined;
}

const socket = createSocket({ type: 'udp4', reuseAddr: true });
const waiting = new Map<number, (address: string) => void>();
socket.on('message', (packet) => {
  if (packet.length < 8) return;
  const xid = packet.readUInt32BE(4);
  const address = offered(packet, xid);
  if (address !== undefined) waiting.get(xid)?.(address);
});

function probe(mac: string): Promise<{ address: string; ms: number } | undefined> {
  const started = performance.now();
  const xid = randomBytes(4).readUInt32BE(0);
  const packet = discover(mac, xid);
  return new Promise((resolve) => {
    const send = () => socket.send(packet, 67, '255.255.255.255');
    const timer = setInterval(() => {
      if (performance.now() - started > GIVE_UP_MS) finish(undefined);
      else send();
    }, RETRY_MS);
    const finish = (result: { address: string; ms: number } | undefined) => {
      clearInterval(timer);
      waiting.delete(xid);
      resolve(result);
    };
    waiting.set(xid, (address) => finish({ address, ms: performance.now() - started }));
    send();
  });
}

socket.bind(68, () => {
  socket.setBroadcast(true);
  process.stdout.write('ready\n');
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const mac = line.trim();
    if (mac === '') return;
    void probe(mac).then((result) => process.stdout.write(`${JSON.stringify({ mac, ...(result ?? { address: null, ms: null }) })}\n`));
  });
  lines.on('close', () => socket.close());
});
