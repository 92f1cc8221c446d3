import { describe, expect, it } from 'vitest';
import { chainEdit, parseSave, renderRestore, TABLES, withWiring } from '../../../../src/linux_net/firewall/iptables/plan.js';
import { renderRules } from '../../../../src/linux_net/firewall/iptables/render.js';
import { firewallState } from '../../../support/firewall.js';
import { DOCKER_HOST, EMPTY, FakeKernel, FIRST_SYNC_SCRIPT } from '../../../support/iptables.js';

const firewall = firewallState;

describe('parseSave', () => {
  it('reads every chain of filter, nat and mangle with its rules as printed', () => {
    const installed = parseSave(DOCKER_HOST);
    expect([...installed.filter.keys()]).toEqual([
      'INPUT',
      'FORWARD',
      'OUTPUT',
      'DOCKER',
      'DOCKER-ISOLATION-STAGE-1',
      'DOCKER-ISOLATION-STAGE-2',
      'DOCKER-USER',
      'admin-count',
    ]);
    expect(installed.filter.get('INPUT')).toEqual([
      '-s 198.51.100.0/24 -p tcp -m tcp --dport 22 -m comment --comment "admin: ssh from the office" -j ACCEPT',
    ]);
    expect(installed.filter.get('FORWARD')).toEqual([
      '-j DOCKER-USER',
      '-j DOCKER-ISOLATION-STAGE-1',
      '-o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-o docker0 -j DOCKER',
      '-i docker0 ! -o docker0 -j ACCEPT',
      '-i docker0 -o docker0 -j ACCEPT',
    ]);
    expect(installed.filter.get('OUTPUT')).toEqual([]);
    expect(installed.filter.get('admin-count')).toEqual(['']);
    expect(installed.nat.get('DOCKER')).toEqual([
      '-i docker0 -j RETURN',
      '! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80',
    ]);
    expect(installed.nat.get('POSTROUTING')).toEqual(['-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE']);
    expect(installed.mangle.size).toBe(0);
  });

  it('ignores tables novanet does not manage', () => {
    const installed = parseSave(DOCKER_HOST);
    expect(Object.keys(installed)).toEqual(['filter', 'nat', 'mangle']);
    const everyRule = TABLES.flatMap((table) => [...installed[table].values()].flat());
    expect(everyRule).not.toContain('-d 172.17.0.2/32 ! -i docker0 -j DROP');
  });

  it('reads iptables-save -c output (counters before each rule)', () => {
    const installed = parseSave(
      '*nat\n:POSTROUTING ACCEPT [10:600]\n:nova-network-snat - [0:0]\n[7:420] -A POSTROUTING -j nova-postrouting-bottom\n[0:0] -A nova-network-snat -j nova-network-float-snat\nCOMMIT\n',
    );
    expect(installed.nat.get('POSTROUTING')).toEqual(['-j nova-postrouting-bottom']);
    expect(installed.nat.get('nova-network-snat')).toEqual(['-j nova-network-float-snat']);
  });

  it('reads empty text as no chains', () => {
    const installed = parseSave('');
    for (const table of TABLES) expect(installed[table].size).toBe(0);
  });
});

describe('renderRestore', () => {
  const desired = withWiring(renderRules(firewall()));

  it('declares every novanet chain, fills it and jumps to it on an empty ruleset', () => {
    const { script, changed } = renderRestore(desired, parseSave(EMPTY));
    expect(script).toBe(FIRST_SYNC_SCRIPT);
    expect(changed).toEqual([
      'filter/nova-filter-top',
      'filter/nova-network-FORWARD',
      'filter/nova-network-INPUT',
      'filter/nova-network-isolate',
      'filter/FORWARD:-j nova-filter-top',
      'filter/INPUT:-j nova-network-INPUT',
      'nat/nova-network-PREROUTING',
      'nat/nova-network-OUTPUT',
      'nat/nova-network-POSTROUTING',
      'nat/nova-postrouting-bottom',
      'nat/nova-network-snat',
      'nat/nova-network-float-snat',
      'nat/PREROUTING:-j nova-network-PREROUTING',
      'nat/OUTPUT:-j nova-network-OUTPUT',
      'nat/POSTROUTING:-j nova-network-POSTROUTING',
      'nat/POSTROUTING:-j nova-postrouting-bottom',
      'mangle/nova-network-POSTROUTING',
      'mangle/POSTROUTING:-j nova-network-POSTROUTING',
    ]);
  });

  it('writes the same script beside Docker: foreign chains and rules never appear in it', () => {
    const { script } = renderRestore(desired, parseSave(DOCKER_HOST));
    expect(script).toBe(FIRST_SYNC_SCRIPT);
    expect(script).not.toMatch(/DOCKER|docker0|admin|MASQUERADE|-D |-F |-X |-R /);
  });

  it('is empty when the installed rules are the desired ones', () => {
    const kernel = new FakeKernel(DOCKER_HOST);
    kernel.restore(renderRestore(desired, parseSave(kernel.save())).script);
    expect(renderRestore(desired, parseSave(kernel.save()))).toEqual({ script: '', changed: [] });
  });

  it('edits only the rules that differ, in place, in only the chain that holds them', () => {
    const kernel = new FakeKernel(DOCKER_HOST);
    kernel.restore(renderRestore(desired, parseSave(kernel.save())).script);
    const next = withWiring(renderRules(firewall({ routingSourceIp: '192.0.2.11' })));
    expect(renderRestore(next, parseSave(kernel.save()))).toEqual({
      script: [
        '*nat',
        '-D nova-network-snat 3',
        '-A nova-network-snat -s 10.0.0.0/24 -o eth0 -j SNAT --to-source 192.0.2.11',
        'COMMIT',
        '',
      ].join('\n'),
      changed: ['nat/nova-network-snat'],
    });
    kernel.restore(renderRestore(next, parseSave(kernel.save())).script);
    expect(renderRestore(next, parseSave(kernel.save())).script).toBe('');
  });

  it('re-declares (empties) and refills a chain when that is shorter than editing it', () => {
    const kernel = new FakeKernel();
    kernel.restore(renderRestore(desired, parseSave('')).script);
    kernel.tables.filter.get('nova-network-FORWARD')!.reverse();
    expect(renderRestore(desired, parseSave(kernel.save())).script).toBe(
      '*filter\n:nova-network-FORWARD - [0:0]\n-A nova-network-FORWARD -i br100 -j ACCEPT\n-A nova-network-FORWARD -o br100 -j ACCEPT\nCOMMIT\n',
    );
  });

  it('chainEdit: one line to add or remove one rule anywhere in a long chain', () => {
    const rules = Array.from(
      { length: 1000 },
      (_, index) => `-d 198.18.${index >> 8}.${index & 255}/32 -j DNAT --to-destination 10.0.0.${index % 250}`,
    );
    // At the end: appended (iptables-nft need not read the chain for that).
    expect(chainEdit('c', rules, [...rules, '-d 203.0.113.1/32 -j ACCEPT'])).toEqual(['-A c -d 203.0.113.1/32 -j ACCEPT']);
    expect(chainEdit('c', rules, [...rules.slice(0, 10), '-d 203.0.113.1/32 -j ACCEPT', ...rules.slice(10)])).toEqual([
      '-I c 11 -d 203.0.113.1/32 -j ACCEPT',
    ]);
    expect(
      chainEdit(
        'c',
        rules,
        rules.filter((_, index) => index !== 500),
      ),
    ).toEqual(['-D c 501']);
    expect(
      chainEdit(
        'c',
        rules,
        rules.map((rule, index) => (index === 7 ? '-j RETURN' : rule)),
      ),
    ).toEqual(['-D c 8', '-I c 8 -j RETURN']);
  });

  it('refills a chain whose rules are in another order or duplicated', () => {
    const kernel = new FakeKernel();
    kernel.restore(renderRestore(desired, parseSave('')).script);
    kernel.tables.filter.get('nova-network-FORWARD')!.reverse();
    kernel.tables.nat.get('nova-network-POSTROUTING')!.push('-s 10.0.0.0/24 -d 10.0.0.1/32 -j ACCEPT');
    expect(renderRestore(desired, parseSave(kernel.save())).changed).toEqual([
      'filter/nova-network-FORWARD',
      'nat/nova-network-POSTROUTING',
    ]);
  });

  it('re-inserts only a jump deleted by hand, at the top', () => {
    const kernel = new FakeKernel(DOCKER_HOST);
    kernel.restore(renderRestore(desired, parseSave(kernel.save())).script);
    const forward = kernel.tables.filter.get('FORWARD')!;
    forward.splice(forward.indexOf('-j nova-filter-top'), 1);
    expect(renderRestore(desired, parseSave(kernel.save()))).toEqual({
      script: '*filter\n-I FORWARD 1 -j nova-filter-top\nCOMMIT\n',
      changed: ['filter/FORWARD:-j nova-filter-top'],
    });
  });

  it('leaves a jump where it is once present, even below foreign rules', () => {
    const kernel = new FakeKernel(DOCKER_HOST);
    kernel.restore(renderRestore(desired, parseSave(kernel.save())).script);
    kernel.tables.filter.get('FORWARD')!.unshift('-j DOCKER-USER');
    expect(renderRestore(desired, parseSave(kernel.save())).script).toBe('');
  });
});
