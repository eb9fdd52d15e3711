import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { INVENTORY_ACTIONS, containerFromInspect, inventoryChangeOf, joinedContainerId } from '../../../src/inventory/container.js';
import { networkFromListEntry, networksByIdAndName, type DockerNetwork } from '../../../src/inventory/network.js';
import { DockerEvent, InspectAnswer, NetworkList } from '../../../src/inventory/dockerAnswers.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const inspect = (name: string) => InspectAnswer.parse(JSON.parse(fixture(`inspect-${name}.json`)));

describe('containerFromInspect (real API answers)', () => {
  it('reads a container on two networks with IPv4 and IPv6', () => {
    const c = containerFromInspect(inspect('probe6-srv'))!;
    expect(c.name).toBe('probe6-srv');
    expect(c.image).toBe('outpost-test/busybox:1');
    expect(c.pid).toBeGreaterThan(1);
    expect(c.networkMode).toBe('outpost-probe6');
    expect(c.addresses).toEqual(
      expect.arrayContaining([
        { network: 'outpost-probe6', address: '10.213.8.2', scope: 'host' },
        { network: 'outpost-probe6', address: 'fd00:213:7::2', scope: 'host' },
        { network: 'outpost-probe', address: '10.213.7.4', scope: 'host' },
      ]),
    );
    expect(c.addresses).toHaveLength(3);
    expect(c.publishedPorts).toEqual([]);
  });

  it('reads compose labels and published ports with their host addresses', () => {
    const c = containerFromInspect(inspect('probe-pub'))!;
    expect(c.composeProject).toBe('shop');
    expect(c.composeService).toBe('web');
    expect(c.publishedPorts).toEqual([
      { hostAddress: '127.0.0.1', hostPort: 18081, containerPort: 8080 },
      { hostAddress: '0.0.0.0', hostPort: 18082, containerPort: 8081 },
      { hostAddress: '::', hostPort: 18082, containerPort: 8081 },
    ]);
  });

  it('gives a host-network container no addresses and a sidecar the id it joins', () => {
    const host = containerFromInspect(inspect('probe-hostnet'))!;
    expect(host.networkMode).toBe('host');
    expect(host.addresses).toEqual([]);
    const sidecar = containerFromInspect(inspect('probe-sidecar'))!;
    expect(joinedContainerId(sidecar)).toBe(inspect('probe-pub').Id);
    expect(joinedContainerId(host)).toBeUndefined();
  });

  it("takes each address's scope from its network, and host when the network is unknown", () => {
    const answer = inspect('probe6-srv');
    const probe6 = answer.NetworkSettings!.Networks!['outpost-probe6']!.NetworkID!;
    const networks = new Map<string, DockerNetwork>([[probe6, { id: probe6, name: 'outpost-probe6', scope: 'global', bridgeSubnets: [] }]]);
    const scopes = containerFromInspect(answer, networks)!.addresses.map((a) => `${a.network} ${a.address} ${a.scope}`);
    expect(scopes.sort()).toEqual([
      'outpost-probe 10.213.7.4 host',
      'outpost-probe6 10.213.8.2 global',
      'outpost-probe6 fd00:213:7::2 global',
    ]);
  });

  it('returns undefined for a container that is not running', () => {
    const stopped = inspect('probe6-cli');
    stopped.State = { ...stopped.State, Running: false, Pid: 0 };
    expect(containerFromInspect(stopped)).toBeUndefined();
  });
});

describe('inventoryChangeOf (a real event stream)', () => {
  const events = fixture('events.ndjson')
    .trim()
    .split('\n')
    .map((line) => DockerEvent.parse(JSON.parse(line)));

  it('maps start, rename and network changes to a refresh and die/destroy to a removal', () => {
    const changes = events.map((e) => [`${e.Type} ${e.Action}`, inventoryChangeOf(e)?.kind ?? 'ignore']);
    expect(new Map(changes as [string, string][])).toEqual(
      new Map([
        ['container create', 'ignore'],
        ['network connect', 'refresh'],
        ['container start', 'refresh'],
        ['container rename', 'refresh'],
        ['network disconnect', 'refresh'],
        ['container kill', 'ignore'],
        ['container die', 'remove'],
        ['container destroy', 'remove'],
        ['network create', 'networks'],
        ['network destroy', 'networks'],
      ]),
    );
  });

  it('names the container of a network event, not the network', () => {
    const connect = events.find((e) => e.Type === 'network' && e.Action === 'connect')!;
    const change = inventoryChangeOf(connect) as { id: string };
    expect(change.id).toBe(connect.Actor!.Attributes!.container);
    expect(change.id).not.toBe(connect.Actor!.ID);
  });
});

/** Podman 4.3's Docker-compatible API, answers captured from a rootful `podman system service`. */
describe("Podman's Docker-compatible API", () => {
  const networks = networksByIdAndName(NetworkList.parse(JSON.parse(fixture('podman-networks-list.json'))).map(networkFromListEntry));
  const events = fixture('podman-events.ndjson')
    .trim()
    .split('\n')
    .map((line) => DockerEvent.parse(JSON.parse(line)));

  it('reads a container on a named network: the network by name (Podman gives no id there), its published port', () => {
    const answer = InspectAnswer.parse(JSON.parse(fixture('podman-inspect-srv.json')));
    expect(answer.NetworkSettings!.Networks!['outpost-pm-net']!.NetworkID).toBe('outpost-pm-net');
    const c = containerFromInspect(answer, networks)!;
    expect(c.name).toBe('outpost-pm-srv');
    expect(c.image).toBe('localhost/outpost-test/busybox:1');
    // Podman says "bridge"; Docker would say the network's name.
    expect(answer.HostConfig!.NetworkMode).toBe('bridge');
    expect(c.networkMode).toBe('outpost-pm-net');
    expect(c.addresses).toEqual([{ network: 'outpost-pm-net', address: '10.213.85.2', scope: 'host' }]);
    expect(c.publishedPorts).toEqual([{ hostAddress: '127.0.0.1', hostPort: 18085, containerPort: 8080 }]);
  });

  it("names a container on Podman's default network by that network", () => {
    const c = containerFromInspect(InspectAnswer.parse(JSON.parse(fixture('podman-inspect-default.json'))), networks)!;
    expect(c.networkMode).toBe('podman');
    expect(c.addresses.map((a) => `${a.network} ${a.scope}`)).toEqual(['podman host']);
  });

  it('refreshes the container of a network event, which Podman gives as the actor', () => {
    const connect = events.find((e) => e.Type === 'network' && e.Action === 'connect')!;
    expect(connect.Actor!.Attributes!.container).toBeUndefined();
    const started = events.find((e) => e.Type === 'container' && e.Action === 'start')!;
    expect(inventoryChangeOf(connect)).toEqual({ kind: 'refresh', id: started.Actor!.ID });
    const changes = events.map((e) => `${e.Type} ${e.Action} ${inventoryChangeOf(e)?.kind ?? 'ignore'}`);
    expect(changes).toEqual(
      expect.arrayContaining(['container start refresh', 'container rename refresh', 'network disconnect refresh', 'container die remove']),
    );
  });

  it('asks Podman for die and destroy by its own names, died and remove, and forgets a removed container', () => {
    expect(INVENTORY_ACTIONS).toEqual(expect.arrayContaining(['die', 'died', 'destroy', 'remove']));
    expect(inventoryChangeOf({ Type: 'container', Action: 'remove', Actor: { ID: 'a'.repeat(64) } })).toEqual({
      kind: 'remove',
      id: 'a'.repeat(64),
    });
  });
});
