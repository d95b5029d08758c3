import { startDemoServices, startSandbox, type Sandbox, type SandboxOptions } from '../../src/sandbox/index.js';

/**
 * A sandbox with the demo target plus whatever extra targets a test adds. Unpaced unless the test asks
 * (`paced: true`): every other behaviour of the real agent stays, and the suite stays fast.
 */
export async function startTestSandbox(extraTargets: Record<string, unknown> = {}, options: Partial<SandboxOptions> = {}) {
  const demo = await startDemoServices();
  const config = { ...demo.config, targets: { ...demo.config.targets, ...extraTargets }, ...((options.config as object) ?? {}) };
  const sandbox: Sandbox = await startSandbox({ paced: false, ...options, config });
  return {
    sandbox,
    demo,
    close: async () => {
      await sandbox.close();
      await demo.close();
    },
  };
}
