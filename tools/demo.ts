/**
 * `make demo`: novanet's main job on the embedded default, in a lab of network
 * namespaces (the machine's own network is never touched). A FlatDHCP network is
 * created with novanet-manage, the service runs with its host layer inside the lab,
 * two instances are allocated through the API, each VM takes its lease with a real
 * DHCP client, and the VMs ping each other and the outside. Everything is torn down
 * at the end, also on failure and on Ctrl-C.
 */
import { BIN, eventually, Lab, type LabService, requireBuild, run } from './lab.js';

const ECHO_PORT = 9000;
const INSTANCES = ['d3e0a1f2-0000-4000-8000-000000000001', 'd3e0a1f2-0000-4000-8000-000000000002'];

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function manage(configFile: string, args: string[]): Promise<string> {
  const result = await run([process.execPath, BIN.manage, '--config-file', configFile, ...args]);
  if (result.code !== 0) throw new Error(`novanet-manage ${args.join(' ')}: ${result.stderr.trim()}`);
  return result.stdout;
}

interface Row {
  vm: string;
  api: string;
  dhcp: string;
  pingPeer: string;
  pingOutside: string;
  snat: string;
}

async function main(): Promise<number> {
  requireBuild();
  say('novanet demo: building a lab of network namespaces (network host, 2 VMs, outside host)');
  const lab = await Lab.create({ vms: 2, flatInterfaceAddress: '172.31.0.10/24' });
  let service: LabService | undefined;
  // On Ctrl-C the lab ends its processes (this service among them) by PID.
  try {
    const configFile = lab.writeConfig();
    await manage(configFile, ['db', 'sync']);
    say(`novanet-manage network create --label=demo --fixed_range_v4=10.0.0.0/24`);
    await manage(configFile, ['network', 'create', '--label=demo', '--fixed_range_v4=10.0.0.0/24']);
    const token = (await manage(configFile, ['token', 'create', '--project_id=demo', '--role=admin', '--description=demo'])).trim();
    service = await lab.startService(configFile);
    say(`novanet-network is up (API on ${service.api}, host layer in ${lab.netNs})`);
    await lab.startEcho(ECHO_PORT);

    const rows: Row[] = [];
    for (const [index, vm] of lab.vms.entries()) {
      const response = await fetch(`${service.api}/v2.1/os-novanet/instances`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Auth-Token': token },
        body: JSON.stringify({ instance: { uuid: INSTANCES[index], project_id: 'demo', host: 'compute1', hostname: vm.name } }),
      });
      if (!response.ok) throw new Error(`allocate ${vm.name}: HTTP ${response.status} ${await response.text()}`);
      const info = (await response.json()) as {
        network_info: { address: string; network: { bridge: string; subnets: { ips: { address: string }[] }[] } }[];
      };
      const vif = info.network_info[0]!;
      const address = vif.network.subnets[0]!.ips[0]!.address;
      say(`${vm.name}: API allocated ${address} (MAC ${vif.address}) on ${vif.network.bridge}`);
      await lab.plug(vm, vif.network.bridge, vif.address);
      const lease = await lab.dhcp(vm);
      say(`${vm.name}: udhcpc leased ${lease.address || 'nothing'}${lease.router ? ` (router ${lease.router})` : ''}`);
      rows.push({ vm: vm.name, api: address, dhcp: lease.address || '-', pingPeer: '', pingOutside: '', snat: '' });
    }
    for (const [index, row] of rows.entries()) {
      const vm = lab.vms[index]!;
      const peer = rows[(index + 1) % rows.length]!;
      const ping = async (target: string) =>
        (await lab.exec(vm.ns, ['ping', '-c', '3', '-i', '0.2', '-W', '2', target])).code === 0 ? 'ok' : 'FAILED';
      row.pingPeer = `${peer.api} ${await ping(peer.api)}`;
      row.pingOutside = `${lab.outsideAddress} ${await ping(lab.outsideAddress)}`;
      row.snat = await eventually(async () => lab.sourceSeenOutside(vm, ECHO_PORT), 'a connection to the outside');
    }

    say('\nsummary');
    say('vm   api address  dhcp lease   ping peer          ping outside      outside saw');
    for (const row of rows)
      say(
        `${row.vm}  ${row.api.padEnd(11)}  ${row.dhcp.padEnd(11)}  ${row.pingPeer.padEnd(17)}  ${row.pingOutside.padEnd(16)}  ${row.snat}`,
      );
    const good = rows.every(
      (row) => row.api === row.dhcp && row.pingPeer.endsWith('ok') && row.pingOutside.endsWith('ok') && row.snat === lab.publicAddress,
    );
    say(
      good
        ? `\nresult: every VM got its API address by DHCP and reached its peer and the outside (SNAT to ${lab.publicAddress})`
        : '\nresult: FAILED (see the table)',
    );
    return good ? 0 : 1;
  } finally {
    await service?.stop();
    await lab.destroy();
    say('lab removed');
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    process.stderr.write(`demo failed: ${error.message}\n`);
    process.exitCode = 1;
  },
);
