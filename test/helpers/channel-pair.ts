import { ReliableChannel, WebSocketTransport, type ReliableChannelOptions, type WebSocketTransportOptions } from '../../src/channel/index.js';
import { FaultRelay, type FaultRelayOptions } from './fault-relay.js';
import { connectPair, startAgentServer, type AgentServer } from './ws-pair.js';
import { within } from './servers.js';

/*
 * A client-role and an agent-role ReliableChannel, each on a WebSocketTransport around a real `ws` socket,
 * connected through a FaultRelay: client ws → relay → agent WebSocketServer.
 */

export interface ChannelPairOptions {
  relay?: Omit<FaultRelayOptions, 'upstreamUrl'>;
  client?: Omit<ReliableChannelOptions, 'role'>;
  agent?: Omit<ReliableChannelOptions, 'role'>;
  clientTransport?: WebSocketTransportOptions;
  agentTransport?: WebSocketTransportOptions;
}

export interface ChannelPair {
  server: AgentServer;
  relay: FaultRelay;
  client: ReliableChannel;
  agent: ReliableChannel;
  clientTransport: WebSocketTransport;
  agentTransport: WebSocketTransport;
  /** Open a new WebSocket through the relay and attach both channels to its two ends (what resume does). */
  reconnect(): Promise<void>;
  /** Resolves when both channels saw their transport close. */
  bothDetached(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startChannelPair(options: ChannelPairOptions = {}): Promise<ChannelPair> {
  const server = await startAgentServer();
  const relay = await FaultRelay.start({ upstreamUrl: server.url, ...options.relay });
  const client = new ReliableChannel({ role: 'client', ...options.client });
  const agent = new ReliableChannel({ role: 'agent', ...options.agent });
  // A channel closed with an error destroys `data` with it; tests assert on 'close', not on a crash.
  client.data.on('error', () => {});
  agent.data.on('error', () => {});
  const transports: WebSocketTransport[] = [];
  const pair: ChannelPair = {
    server,
    relay,
    client,
    agent,
    clientTransport: undefined as unknown as WebSocketTransport,
    agentTransport: undefined as unknown as WebSocketTransport,
    async reconnect() {
      const { client: clientWs, agent: agentWs } = await connectPair(server, relay.url);
      pair.clientTransport = new WebSocketTransport(clientWs, options.clientTransport);
      pair.agentTransport = new WebSocketTransport(agentWs, options.agentTransport);
      transports.push(pair.clientTransport, pair.agentTransport);
      agent.attach(pair.agentTransport);
      client.attach(pair.clientTransport);
    },
    bothDetached(timeoutMs = 5000) {
      const detached = (ch: ReliableChannel): Promise<void> =>
        ch.isAttached ? new Promise<void>((resolve) => ch.once('transport-close', () => resolve())) : Promise.resolve();
      return within(Promise.all([detached(client), detached(agent)]).then(() => undefined), timeoutMs, 'both channels to lose their transport');
    },
    async close() {
      client.close();
      agent.close();
      for (const t of transports) t.terminate();
      await relay.close();
      await server.close();
    },
  };
  try {
    await pair.reconnect();
  } catch (err) {
    await pair.close();
    throw err;
  }
  return pair;
}

/** Poll `condition` every few ms until true; rejects after `timeoutMs` naming `what`. */
export async function waitFor(condition: () => boolean, timeoutMs: number, what: string, intervalMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
