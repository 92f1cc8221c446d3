import { describe, expect, it } from 'vitest';
import { createFirewall } from '../../../src/linux_net/firewall/index.js';
import { firewallState } from '../../support/firewall.js';
import { FLOATING, LIST, noTable } from '../../support/nftables.js';
import { notInstalled, RecordingExecutor } from '../../support/recordingExecutor.js';

describe('createFirewall', () => {
  const IPTABLES_SAVE = [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ':nova-network-PREROUTING - [0:0]',
    ':nova-float-dnat-c00002 - [0:0]',
    ':FOREIGN - [0:0]',
    '-A PREROUTING -j nova-network-PREROUTING',
    '-A POSTROUTING -j FOREIGN',
    '-A nova-network-PREROUTING -d 192.0.2.0/24 -j nova-float-dnat-c00002',
    '-A nova-float-dnat-c00002 -d 192.0.2.50/32 -j DNAT --to-destination 10.0.0.3',
    'COMMIT',
    '',
  ].join('\n');

  it("nftables: sync installs the table, then removes nova's iptables chains and jumps, keeping foreign ones", async () => {
    const executor = new RecordingExecutor().on(LIST, noTable).on(['iptables-save'], { stdout: IPTABLES_SAVE });
    const changes = await createFirewall('nftables', executor).sync(firewallState());
    expect(changes).toEqual([
      'ip novanet/table',
      'iptables nat/nova-network-PREROUTING removed',
      'iptables nat/nova-float-dnat-c00002 removed',
    ]);
    // ip6tables too: it has nothing of novanet's here, so nothing is restored.
    expect(executor.argvs().map((argv) => argv[0])).toEqual([
      'nft',
      'nft',
      'env',
      'nft',
      'iptables-save',
      'iptables-restore',
      'ip6tables-save',
    ]);
    expect(executor.commands[5]!.input).toBe(
      [
        '*nat',
        '-D PREROUTING -j nova-network-PREROUTING',
        '-F nova-network-PREROUTING',
        '-F nova-float-dnat-c00002',
        '-X nova-network-PREROUTING',
        '-X nova-float-dnat-c00002',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('nftables: a host without iptables has nothing of it to remove', async () => {
    const executor = new RecordingExecutor().on(LIST, noTable).on(['iptables-save'], notInstalled);
    expect(await createFirewall('nftables', executor).sync(firewallState())).toEqual(['ip novanet/table']);
  });

  it("iptables: sync writes nova's chains, then deletes novanet's nftables table; apply touches nftables not at all", async () => {
    const executor = new RecordingExecutor().on(['nft', 'list', 'tables', 'ip'], { stdout: 'table ip novanet\n' });
    const firewall = createFirewall('iptables', executor);
    const changes = await firewall.sync(firewallState());
    expect(changes.at(-1)).toBe('nftables table ip novanet removed');
    expect(changes).toContain('nat/nova-network-snat');
    expect(executor.argvs().map((argv) => argv.join(' '))).toEqual([
      'iptables-save',
      'iptables-restore -w 10 --noflush -v',
      'iptables-restore -w 10 --noflush -v',
      // No network has IPv6: only a look for an earlier run's IPv6 rules.
      'ip6tables-save',
      'nft list tables ip6',
      'nft list tables ip',
      'nft delete table ip novanet',
    ]);
    executor.clear();
    await firewall.apply(firewallState({ floating: FLOATING }));
    expect(executor.argvs().map((argv) => argv[0])).toEqual(['iptables-restore']);
  });

  it('iptables: IPv6 rules with ip6tables while a network has a /64, removed when none has', async () => {
    const executor = new RecordingExecutor();
    const firewall = createFirewall('iptables', executor);
    const v6 = firewallState({ networks: [{ cidr: '10.0.0.0/24', bridge: 'br100', gateway: '10.0.0.1', dhcp: true, v6: true }] });
    const changes = await firewall.sync(v6);
    expect(changes).toContain('ip6 filter/nova-network-FORWARD');
    const restored = executor.commands.find((command) => command.argv[0] === 'ip6tables-restore' && command.input !== '')!;
    expect(restored.input).toContain('-A nova-network-FORWARD -i br100 -j ACCEPT');
    expect(restored.input).toContain('-A nova-network-INPUT -i br100 -p udp -m udp --dport 547 -j ACCEPT');
    expect(restored.input).not.toContain('*nat');
    executor.clear();
    executor.on(['ip6tables-save'], {
      stdout: `*filter\n:nova-network-FORWARD - [0:0]\n-A nova-network-FORWARD -i br100 -j ACCEPT\nCOMMIT\n`,
    });
    await firewall.apply(firewallState());
    // IPv4's rules are the same; IPv6's go.
    expect(executor.argvs().map((argv) => argv[0])).toEqual(['ip6tables-save', 'ip6tables-restore']);
    executor.clear();
    await firewall.apply(firewallState());
    expect(executor.argvs()).toEqual([]);
  });

  it('iptables: a host without nft has nothing of it to remove', async () => {
    const executor = new RecordingExecutor().on(['nft'], notInstalled);
    await expect(createFirewall('iptables', executor).sync(firewallState())).resolves.toContain('nat/nova-network-snat');
  });
});
