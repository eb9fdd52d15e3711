// The scenario both fixture capture scripts start (test/unit/connections/fixtures/capture.mjs,
// test/unit/sockets/fixtures/captureEbpf.mjs): on an internal dual-stack network of its own, a
// server (httpd on 9000, an echo listener on 8080) and a client holding one long connection to
// 8080 over IPv4, over which it sent 12,345 bytes (echoed back). Run by hand as root, with the test image the integration tests make.
import { execFileSync } from 'node:child_process';

export const docker = (...args) => execFileSync('docker', args, { encoding: 'utf8' }).trim();
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts it (after removing what an earlier run left); `cleanup` removes it. */
export async function startCaptureScenario(prefix, subnet4, subnet6) {
  const net = `${prefix}-net`;
  const names = { server: `${prefix}-server`, client: `${prefix}-client` };
  const cleanup = () => {
    try {
      docker('rm', '-f', names.server, names.client);
    } catch {
      // not there: nothing to remove
    }
    try {
      docker('network', 'rm', net);
    } catch {
      // not there: nothing to remove
    }
  };
  cleanup();
  docker('network', 'create', '--internal', '--ipv6', '--subnet', subnet4, '--subnet', subnet6, net);
  try {
    docker(
      'run',
      '-d',
      '--name',
      names.server,
      '--network',
      net,
      'outpost-test/busybox:1',
      'sh',
      '-c',
      'mkdir -p /www && echo ok > /www/index.html && httpd -p 9000 -h /www && nc -ll -p 8080 -e cat',
    );
    const serverIp = (field) => docker('inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").${field}}}`, names.server);
    const [ip4, ip6] = [serverIp('IPAddress'), serverIp('GlobalIPv6Address')];
    docker(
      'run',
      '-d',
      '--name',
      names.client,
      '--network',
      net,
      'outpost-test/busybox:1',
      'sh',
      '-c',
      `(head -c 12345 /dev/zero; sleep 100000) | nc ${ip4} 8080; sleep 100000`,
    );
    await sleep(1000);
    return { net, names, ip4, ip6, cleanup };
  } catch (error) {
    cleanup();
    throw error;
  }
}
