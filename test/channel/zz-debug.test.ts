import { it } from 'vitest';
import { readHashed, writeRandom } from '../helpers/byte-streams.js';
import { startChannelPair } from '../helpers/channel-pair.js';
it('debug', async () => {
  const faults = { dropRate: 0.03, duplicateRate: 0.03, reorderRate: 0.03 };
  const p = await startChannelPair({ relay: { seed: Number(process.env.SEED ?? 7), toUpstream: faults, toClient: faults } });
  const bytes = 16 * 1024 * 1024;
  const up = writeRandom(p.client.data, bytes); const down = writeRandom(p.agent.data, bytes);
  const a = readHashed(p.agent.data, bytes); const b = readHashed(p.client.data, bytes);
  const t0 = Date.now(); let last = Date.now(); let maxGap = 0;
  const gap = setInterval(() => { const n = Date.now(); maxGap = Math.max(maxGap, n - last - 1); last = n; }, 1);
  const iv = setInterval(() => {
    const c = p.client.stats, g = p.agent.stats;
    console.log(`t=${Date.now()-t0} up=${(a.received/1048576).toFixed(1)} down=${(b.received/1048576).toFixed(1)} c.res=${c.resends} c.rto=${c.rtoMs.toFixed(1)} c.srtt=${c.srttMs.toFixed(1)} c.buf=${p.client.bufferedMessages} a.res=${g.resends} a.rto=${g.rtoMs.toFixed(1)} a.buf=${p.agent.bufferedMessages} maxGap=${maxGap} c.recv=${c.messagesReceived} c.dup=${c.duplicatesReceived} c.ooo=${c.outOfOrderReceived} c.acksSent=${c.acksSent} a.acksRecv=${g.acksReceived} cPaused=${p.clientTransport.ws.isPaused} aPaused=${p.agentTransport.ws.isPaused} relayToClient=${p.relay.counters.toClient.frames} relayToUp=${p.relay.counters.toUpstream.frames} cBufAmt=${p.clientTransport.ws.bufferedAmount} aBufAmt=${p.agentTransport.ws.bufferedAmount} cReadLen=${p.client.data.readableLength} cFlowing=${p.client.data.readableFlowing}`);
    maxGap = 0;
  }, 250);
  await Promise.all([up.done, down.done, a.done, b.done]);
  clearInterval(iv); clearInterval(gap);
  console.log('total', Date.now() - t0);
  await p.close();
}, 60000);
