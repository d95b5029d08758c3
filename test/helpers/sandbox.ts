import { startDemoServices, startSandbox, type Sandbox, type SandboxOptions } from '../../src/sandbox/index.js';

/** A sandbox with the demo target plus whatever extra targets a test adds. */
export async function startTestSandbox(extraTargets: Record<string, unknown> = {}, options: Partial<SandboxOptions> = {}) {
  const demo = await startDemoServices();
  const config = { ...demo.config, targets: { ...demo.config.targets, ...extraTargets }, ...((options.config as object) ?? {}) };
  const sandbox: Sandbox = await startSandbox({ ...options, config });
  return {
    sandbox,
    demo,
    close: async () => {
      await sandbox.close();
      await demo.close();
    },
  };
}
