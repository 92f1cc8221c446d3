/**
 * `make demo`: novanet's main job on the embedded default, in a lab of network
 * namespaces (the machine's own network is never touched): a small cloud of a network
 * host and two compute hosts on one underlay, each running its own novanet-network on
 * one SQLite database. A FlatDHCP network is created with novanet-manage; each compute
 * host allocates a VM through its own API, the VM's tap appears under its devname and
 * the compute host's service plugs it; each VM leases its address from the network
 * host's dnsmasq across the underlay, pings the other VM and the outside (SNATed by the
 * network host). Everything is torn down at the end, also on failure and on Ctrl-C.
 */
import { eventually, Lab, type LabService, requireBuild } from './lab.js';

const ECHO_PORT = 9000;
const COMPUTE = [
  { name: 'compute1', address: '172.31.0.21', instance: 'd3e0a1f2-0000-4000-8000-000000000001' },
  { name: 'compute2', address: '172.31.0.22', instance: 'd3e0a1f2-0000-4000-8000-000000000002' },
];

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

interface Row {
  vm: string;
  host: string;
  api: string;
  dhcp: string;
  pingPeer: string;
  pingOutside: string;
  snat: string;
}

interface NetworkInfo {
  network_info: { address: string; devname: string; network: { bridge: string; subnets: { ips: { address: string }[] }[] } }[];
}

async function main(): Promise<number> {
  requireBuild();
  say('novanet demo: a lab of network namespaces (a network host and two compute hosts on one underlay, an outside host)');
  const lab = await Lab.create({ vms: 0, underlay: true, flatInterfaceAddress: '172.31.0.10/24' });
  const services: LabService[] = [];
  // On Ctrl-C the lab ends its processes (these services among them) by PID.
  try {
    const configFile = lab.writeConfig({ tunnel_ip: '172.31.0.10' });
    const configs = [configFile];
    const hostNs: string[] = [];
    for (const compute of COMPUTE) {
      const ns = await lab.addComputeHost(compute.name, `${compute.address}/24`);
      hostNs.push(ns);
      configs.push(lab.writeConfig({ host: compute.name, network_host: 'false', my_ip: compute.address }, { ns, name: compute.name }));
    }
    say('novanet-manage network create --label=demo --fixed_range_v4=10.0.0.0/24');
    const token = await lab.provision(
      configFile,
      [
        ['db', 'sync'],
        ['network', 'create', '--label=demo', '--fixed_range_v4=10.0.0.0/24'],
      ],
      'demo',
    );
    for (const config of configs) services.push(await lab.startService(config));
    say(`novanet-network is up on nethost, ${COMPUTE.map((compute) => compute.name).join(' and ')} (one SQLite database)`);
    await lab.startEcho(ECHO_PORT);

    const rows: Row[] = [];
    const vms = [];
    for (const [index, compute] of COMPUTE.entries()) {
      const response = await fetch(`${services[index + 1]!.api}/v2.1/os-novanet/instances`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Auth-Token': token },
        body: JSON.stringify({ instance: { uuid: compute.instance, project_id: 'demo', host: compute.name, hostname: `vm${index + 1}` } }),
      });
      if (!response.ok) throw new Error(`allocate vm${index + 1}: HTTP ${response.status} ${await response.text()}`);
      const vif = ((await response.json()) as NetworkInfo).network_info[0]!;
      const address = vif.network.subnets[0]!.ips[0]!.address;
      say(`vm${index + 1}: ${compute.name}'s API allocated ${address} (MAC ${vif.address}, tap ${vif.devname})`);
      // The hypervisor's part: the VM's tap, under its devname; the compute host's service plugs it.
      const vm = await lab.addVm(`vm${index + 1}`, hostNs[index]!, vif.devname);
      await lab.boot(vm, vif.address);
      await lab.exec(hostNs[index]!, ['ip', 'link', 'set', vif.devname, 'up']);
      await eventually(
        async () =>
          (await lab.exec(hostNs[index]!, ['ip', '-o', 'link', 'show', 'master', vif.network.bridge])).stdout.includes(vif.devname)
            ? true
            : undefined,
        `${vif.devname} plugged into ${vif.network.bridge}`,
        5_000,
      );
      const lease = await lab.lease(vm);
      say(`vm${index + 1}: plugged by ${compute.name}, udhcpc leased ${lease.address} from ${lease.server ?? '?'} across the underlay`);
      vms.push(vm);
      rows.push({ vm: vm.name, host: compute.name, api: address, dhcp: lease.address, pingPeer: '', pingOutside: '', snat: '' });
    }
    for (const [index, row] of rows.entries()) {
      const vm = vms[index]!;
      const peer = rows[(index + 1) % rows.length]!;
      const ping = async (target: string) =>
        (await lab.exec(vm.ns, ['ping', '-c', '3', '-i', '0.2', '-W', '2', target])).code === 0 ? 'ok' : 'FAILED';
      row.pingPeer = `${peer.api} ${await ping(peer.api)}`;
      row.pingOutside = `${lab.outsideAddress} ${await ping(lab.outsideAddress)}`;
      row.snat = await eventually(async () => lab.sourceSeenOutside(vm, ECHO_PORT), 'a connection to the outside');
    }

    say('\nsummary');
    say('vm   host      api address  dhcp lease   ping peer          ping outside      outside saw');
    for (const row of rows)
      say(
        `${row.vm}  ${row.host}  ${row.api.padEnd(11)}  ${row.dhcp.padEnd(11)}  ${row.pingPeer.padEnd(17)}  ${row.pingOutside.padEnd(16)}  ${row.snat}`,
      );
    say(`\n${(await lab.manage(configFile, ['host', 'list'])).trimEnd()}`);
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
    for (const service of services) await service.stop();
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
