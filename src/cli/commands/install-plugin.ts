import { realpathSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import type { Logger as PinoLogger } from 'pino';
import { defaultShimDir, installShim, isShim, PLUGIN_NAME, selfCommand, uninstallShim } from '../plugin-shim.js';

export interface InstallPluginArgs {
  dir?: string;
  uninstall: boolean;
}

/** The first session-manager-plugin on PATH, if any. */
function firstOnPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const path = join(dir, PLUGIN_NAME);
    try {
      realpathSync(path);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** `install-plugin [--dir DIR] [--uninstall]`: the shim the AWS CLI runs as session-manager-plugin. Messages on stderr. */
export async function runInstallPlugin(args: InstallPluginArgs, _logger: PinoLogger): Promise<void> {
  const dir = resolve(args.dir ?? defaultShimDir());
  if (args.uninstall) {
    const result = await uninstallShim(dir);
    process.stderr.write(result.action === 'removed' ? `Removed ${result.path}; the AWS CLI runs the next session-manager-plugin on PATH again.\n` : `Nothing to remove: ${result.path} does not exist.\n`);
    return;
  }
  const result = await installShim(dir, selfCommand());
  process.stderr.write(`${result.action === 'replaced' ? 'Replaced' : 'Wrote'} ${result.path} (runs ssm-bridge plugin).\n`);
  const first = firstOnPath();
  if (first === undefined || resolve(first) !== result.path) {
    const shadow = first !== undefined && !isShim(first) ? ` (now ${first} comes first)` : '';
    process.stderr.write(`Put ${dir} first on PATH for the AWS CLI to use it${shadow}, e.g. in ~/.profile:\n  export PATH="${dir}:$PATH"\n`);
  }
}
