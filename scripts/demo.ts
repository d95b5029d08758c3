/**
 * `npm start`: the main job end to end, with nothing but this machine. Starts the sandbox with its demo
 * target, runs `ssm-bridge forward` as a child process against it, fetches the demo page through the tunnel,
 * and shows what came through. Exits non-zero if anything fails.
 */
import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEMO_TARGET, SANDBOX_CREDENTIALS, startDemoServices, startSandbox } from '../src/sandbox/index.js';

// The shipped bin (the bundle), as users run it.
const cliPath = resolve(dirname(fileURLToPath(import.meta.url)), '../bin/ssm-bridge.mjs');

async function main(): Promise<number> {
  const demo = await startDemoServices();
  const sandbox = await startSandbox({ config: demo.config });
  console.log(`sandbox: SSM API, gateway and agent at ${sandbox.endpoint}`);
  console.log('agent: paced like AWS (1 KiB per message, 1 ms apart: about 1 MB/s per session)');
  const args = ['forward', DEMO_TARGET, '--remote-port', '80', '--endpoint-url', sandbox.endpoint];
  console.log(`$ ssm-bridge ${args.join(' ')}`);
  const child = spawn(process.execPath, [cliPath, ...args], {
    env: { ...process.env, AWS_ACCESS_KEY_ID: SANDBOX_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: SANDBOX_CREDENTIALS.secretAccessKey, AWS_REGION: sandbox.config.region, AWS_PROFILE: '' },
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  try {
    const port = await new Promise<number>((resolvePort, reject) => {
      let stderr = '';
      const timer = setTimeout(() => reject(new Error(`no listening line within 15 s:\n${stderr}`)), 15_000);
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        process.stderr.write(d);
        const m = /Listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolvePort(Number(m[1]));
        }
      });
      child.once('exit', (code) => reject(new Error(`forward exited with ${code}:\n${stderr}`)));
    });
    const started = performance.now();
    const response = await fetch(`http://127.0.0.1:${port}/`);
    const body = await response.text();
    console.log(`\nGET http://127.0.0.1:${port}/ -> ${response.status} in ${(performance.now() - started).toFixed(1)} ms, through the tunnel:\n${body}`);
    return response.status === 200 ? 0 : 1;
  } catch (err) {
    console.error(`demo failed: ${(err as Error).message}`);
    return 1;
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    await sandbox.close();
    await demo.close();
  }
}

main().then((code) => process.exit(code));
