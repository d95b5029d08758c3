import http from 'node:http';
import net from 'node:net';

/** The built-in demo target's services: a tiny web page and an echo service, on loopback. */
export interface DemoServices {
  httpPort: number;
  echoPort: number;
  /** A sandbox config with one demo target whose port 80 is the page and port 7 the echo service. */
  config: { targets: Record<string, { agentVersion: string; ports: Record<string, string>; remoteHosts: Record<string, Record<string, string>> }> };
  close(): Promise<void>;
}

export const DEMO_TARGET = 'i-0123456789abcdef0';
/** A target with an agent old enough for basic (one connection at a time) port forwarding. */
export const DEMO_OLD_AGENT_TARGET = 'i-0000000000000old0';

export const DEMO_PAGE = '<!doctype html><title>ssm-bridge sandbox</title><h1>Hello through Session Manager</h1>\n';

export async function startDemoServices(host = '127.0.0.1'): Promise<DemoServices> {
  const web = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(DEMO_PAGE) });
    res.end(DEMO_PAGE);
  });
  const echo = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  await Promise.all([listen(web, host), listen(echo, host)]);
  const httpPort = (web.address() as net.AddressInfo).port;
  const echoPort = (echo.address() as net.AddressInfo).port;
  const ports = { '80': `${host}:${httpPort}`, '7': `${host}:${echoPort}` };
  const remoteHosts = { 'web.internal': { '80': `${host}:${httpPort}` }, 'echo.internal': { '7': `${host}:${echoPort}` } };
  return {
    httpPort,
    echoPort,
    config: {
      targets: {
        [DEMO_TARGET]: { agentVersion: '3.3.2746.0', ports, remoteHosts },
        [DEMO_OLD_AGENT_TARGET]: { agentVersion: '3.0.161.0', ports, remoteHosts },
      },
    },
    close: async () => {
      web.closeAllConnections();
      await Promise.all([new Promise((r) => web.close(r)), new Promise((r) => echo.close(r))]);
    },
  };
}

function listen(server: net.Server, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
}
