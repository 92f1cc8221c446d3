/**
 * The crash test's checkers find what they are meant to: a test that passes because
 * its checker sees nothing would prove nothing.
 */
import { describe, expect, it } from 'vitest';
import { type DbState, type DnsmasqState, dbViolations, dnsmasqViolations, type FloatingNatRule, natViolations } from './hostState.js';

/** Instance A on VIF 1 holding 10.0.0.2, floating 192.0.2.65 associated with it. */
function consistent(): DbState {
  return {
    fixed: [
      { id: 1, address: '10.0.0.2', instanceUuid: 'A', virtualInterfaceId: 1, allocated: true },
      { id: 2, address: '10.0.0.3', instanceUuid: null, virtualInterfaceId: null, allocated: false },
    ],
    vifs: [{ id: 1, mac: 'fa:16:3e:00:00:01', instanceUuid: 'A' }],
    floating: [{ id: 1, address: '192.0.2.65', projectId: 'p1', fixedIpId: 1, host: 'nethost' }],
  };
}

function nat(floating: string, fixed: string): FloatingNatRule[] {
  return [
    { kind: 'dnat', floating, fixed, variant: '' },
    { kind: 'snat', floating, fixed, variant: '-m conntrack --ctstate DNAT' },
    { kind: 'snat', floating, fixed, variant: '-d FIXED/32' },
    { kind: 'snat', floating, fixed, variant: '-o eth0' },
  ];
}

describe('host state checkers', () => {
  it('find nothing wrong in a consistent state', () => {
    const state = consistent();
    expect(dbViolations(state)).toEqual([]);
    expect(natViolations({ rules: nat('192.0.2.65', '10.0.0.2'), unreachable: [] }, new Map([['192.0.2.65', '10.0.0.2']]))).toEqual([]);
    const dnsmasq: DnsmasqState = { hosts: new Map([['fa:16:3e:00:00:01', '10.0.0.2']]), pid: 1, running: true, loadedCurrent: true };
    expect(dnsmasqViolations(dnsmasq, state)).toEqual([]);
  });

  it("find a floating IP on a freed fixed IP, a VIF without its IP, an IP held through another instance's VIF", () => {
    const freed = consistent();
    freed.fixed[0] = { ...freed.fixed[0]!, allocated: false, virtualInterfaceId: null };
    freed.vifs = [];
    expect(dbViolations(freed)).toEqual(['floating IP 192.0.2.65 is associated with fixed IP 10.0.0.2, which is not allocated']);
    const bare = consistent();
    bare.vifs.push({ id: 2, mac: 'fa:16:3e:00:00:02', instanceUuid: 'B' });
    expect(dbViolations(bare)).toEqual(['VIF 2 (fa:16:3e:00:00:02) of B holds 0 allocated fixed IPs (none)']);
    const crossed = consistent();
    crossed.fixed[0] = { ...crossed.fixed[0]!, instanceUuid: 'B' };
    expect(dbViolations(crossed)).toEqual(['fixed IP 10.0.0.2 is allocated to B through VIF 1 of A']);
  });

  it('find missing, duplicated, stale and unreachable NAT rules', () => {
    const wanted = new Map([['192.0.2.65', '10.0.0.2']]);
    expect(natViolations({ rules: nat('192.0.2.65', '10.0.0.2').slice(1), unreachable: [] }, wanted)).toEqual([
      'no DNAT 192.0.2.65 -> 10.0.0.2',
    ]);
    const twice = nat('192.0.2.65', '10.0.0.2');
    expect(natViolations({ rules: [...twice, twice[0]!], unreachable: [] }, wanted)).toEqual([
      'dnat 192.0.2.65<->10.0.0.2  is there 2 times',
    ]);
    expect(
      natViolations({ rules: [...nat('192.0.2.65', '10.0.0.2'), ...nat('192.0.2.66', '10.0.0.9')], unreachable: [] }, wanted),
    ).toHaveLength(4);
    expect(
      natViolations({ rules: nat('192.0.2.65', '10.0.0.2'), unreachable: ['nova-float-dnat-c00002: -d 192.0.2.65/32 ...'] }, wanted),
    ).toHaveLength(1);
  });

  it('find a stale or missing dnsmasq host and a dnsmasq not told of its file', () => {
    const state = consistent();
    const dnsmasq: DnsmasqState = { hosts: new Map([['fa:16:3e:00:00:09', '10.0.0.9']]), pid: 1, running: false, loadedCurrent: false };
    expect(dnsmasqViolations(dnsmasq, state)).toEqual([
      'dnsmasq is not running (pid file: 1)',
      'dnsmasq was not told to load the current hosts file',
      'dnsmasq hosts lack fa:16:3e:00:00:01 10.0.0.2 (have nothing)',
      'dnsmasq hosts have stale fa:16:3e:00:00:09 10.0.0.9',
    ]);
  });
});
