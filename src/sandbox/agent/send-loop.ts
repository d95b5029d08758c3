import { PayloadType } from '../../protocol/index.js';
import type { AgentDataChannel } from './agent-data-channel.js';
import { SEND_LOOP_SLEEP_MS, STREAM_DATA_PAYLOAD_BYTES } from './agent-policy.js';
import { sleep, type ByteQueue } from './byte-queue.js';

/** Unpaced loops yield to the event loop this often, so the reader and timers still run. */
const UNPACED_MESSAGES_PER_YIELD = 32;

/**
 * The agent's write pump (port_basic.go WritePump, port_mux.go transferDataToMgs): while the channel is active,
 * read at most 1 KiB, send it as one message, sleep 1 ms. `paced: false` drops the sleep (the sandbox's
 * --unpaced mode, for speed tests); nothing else changes. Resolves when the source has ended and is drained,
 * or `stopped()` turns true.
 */
export async function runSendLoop(source: ByteQueue, channel: AgentDataChannel, paced: boolean, stopped: () => boolean): Promise<void> {
  let sinceYield = 0;
  while (!stopped()) {
    if (!channel.active) {
      await sleep(SEND_LOOP_SLEEP_MS);
      continue;
    }
    const chunk = source.take(STREAM_DATA_PAYLOAD_BYTES);
    if (chunk === undefined) {
      if (source.done) return;
      await source.waitForData();
      continue;
    }
    if (!channel.sendStreamData(PayloadType.Output, chunk)) await channel.whenWritable();
    if (paced) await sleep(SEND_LOOP_SLEEP_MS);
    else if (++sinceYield >= UNPACED_MESSAGES_PER_YIELD) {
      sinceYield = 0;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}
