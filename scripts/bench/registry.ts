import { rows as ceilingRows } from './ceilings.js';
import { rows as channelRows } from './channel.js';
import { rows as cliRows } from './cli.js';
import { rows as codecRows } from './codec.js';
import { rows as officialPluginRows } from './official-plugin.js';
import { rows as realAgentRows } from './real-agent.js';
import { rows as scpRows } from './scp.js';
import { rows as stripingRows } from './striping.js';
import type { BenchRow } from './types.js';

/** Every bench module, in report order. A new module exports `rows` and is added here. */
export const allRows: BenchRow[] = [...codecRows, ...channelRows, ...cliRows, ...officialPluginRows, ...realAgentRows, ...stripingRows, ...scpRows, ...ceilingRows];
