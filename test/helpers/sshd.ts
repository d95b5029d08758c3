// The launcher lives under scripts/ so the bench's scp rows use the same one.
export { freePort, SSHD_PATH, sshClientOptions, startSshd, type LocalSshd as TestSshd } from '../../scripts/lib/sshd.js';
