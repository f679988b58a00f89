// A kefu cluster of real processes for browser tests: two signaling nodes and two
// media nodes (`kefu serve --role …`) sharing the Redis, PostgreSQL and Ceph radosgw
// that deploy/with-redis.sh, with-postgres.sh and with-radosgw.sh started.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { kefuBinary, logTarget, repoRoot, runTool } from './kefu.mjs';

/** A free TCP port on loopback. */
function freePort() {
  return new Promise((ok, fail) => {
    const server = net.createServer();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

/** The shared engines, or null (then the caller skips; under CI they are required). */
export function engines() {
  const e = process.env;
  if (e.TEST_REDIS_URL && e.TEST_POSTGRES_URL && e.TEST_S3_ENDPOINT) return e;
  if (e.CI) throw new Error('CI must run the cluster tests: run under deploy/with-redis.sh, with-postgres.sh, with-radosgw.sh');
  return null;
}

/** A new PostgreSQL database on the test server; its URL. */
function freshDatabase(adminUrl) {
  const name = `kefu_e2e_${randomBytes(6).toString('hex')}`;
  execFileSync('psql', [adminUrl, '-q', '-c', `CREATE DATABASE ${name}`]);
  return adminUrl.replace(/\/[^/]*$/, `/${name}`);
}

/** Starts one node; resolves with its printed facts once it is ready. */
async function startNode(role, id, env) {
  const dataDir = mkdtempSync(join(tmpdir(), `kefu-${id}-`));
  const nodeEnv = { ...env, KEFU_DATA_DIR: dataDir, KEFU_CLUSTER__NODE_ID: id };
  if (role === 'media') {
    const port = await freePort();
    nodeEnv.KEFU_CLUSTER__INTERNAL_BIND = `127.0.0.1:${port}`;
    nodeEnv.KEFU_CLUSTER__INTERNAL_URL = `http://127.0.0.1:${port}`;
  }
  const log = logTarget(id);
  nodeEnv.RUST_LOG = log.level;
  const child = spawn(kefuBinary(), ['serve', '--role', role], {
    env: nodeEnv,
    stdio: ['ignore', 'pipe', log.stderr],
  });
  let out = '';
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`${id} did not start in 30 s:\n${out}`)), 30000);
    child.stdout.on('data', (d) => {
      out += d;
      if (/press Ctrl-C to stop/.test(out)) {
        clearTimeout(timer);
        ok();
      }
    });
    child.on('exit', (code) => fail(new Error(`${id} exited with ${code}:\n${out}`)));
  });
  const exited = new Promise((ok) => child.on('exit', (code, signal) => ok({ code, signal })));
  return {
    id,
    env: nodeEnv,
    baseUrl: out.match(/http:\s+(\S+)/)[1],
    adminPassword: (out.match(/one-time password: (\S+)/) || [])[1],
    run: (name, args, input) =>
      runTool(name === 'kefu' ? kefuBinary() : join(kefuBinary(), '..', name), args, nodeEnv, input),
    /** `kill -9` (the fault suite); `stop()` afterwards only cleans up. */
    kill() {
      child.kill('SIGKILL');
    },
    async stop() {
      child.kill('SIGTERM');
      let timer;
      await Promise.race([exited, new Promise((ok) => (timer = setTimeout(ok, 15000)))]);
      clearTimeout(timer);
      child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Two media nodes, then two signaling nodes (`extraEnv` for every node); `stop()` ends them all. */
export async function startCluster(e, extraEnv = {}) {
  const prefix = `e2e${randomBytes(5).toString('hex')}`;
  const env = {
    ...process.env,
    KEFU_SERVER__BIND: '127.0.0.1:0',
    KEFU_MEDIA__PORT: '0',
    KEFU_MEDIA__ADVERTISE_IP: '127.0.0.1',
    KEFU_VERIFICATION__MODELS_DIR: join(repoRoot, 'models'),
    KEFU_MODERATION__MODELS_DIR: join(repoRoot, 'models'),
    KEFU_CLUSTER__BACKEND: 'redis',
    KEFU_CLUSTER__REDIS_URL: e.TEST_REDIS_URL,
    KEFU_CLUSTER__KEY_PREFIX: prefix,
    KEFU_CLUSTER__SECRET: randomBytes(24).toString('hex'),
    KEFU_CLUSTER__HEARTBEAT_MS: '200',
    KEFU_CLUSTER__NODE_TIMEOUT_MS: '1000',
    KEFU_DATABASE__URL: freshDatabase(e.TEST_POSTGRES_URL),
    KEFU_STORAGE__EMBEDDED: 'false',
    KEFU_STORAGE__ENDPOINT: e.TEST_S3_ENDPOINT,
    KEFU_STORAGE__ACCESS_KEY: e.TEST_S3_ACCESS_KEY,
    KEFU_STORAGE__SECRET_KEY: e.TEST_S3_SECRET_KEY,
    KEFU_STORAGE__BUCKET: `kefu-${prefix}`,
    KEFU_AUTH__TOKEN_SECRET: randomBytes(24).toString('hex'),
    KEFU_SECURITY__DATA_KEY: randomBytes(32).toString('base64'),
    ...extraEnv,
  };
  // The first node seeds the empty database and prints the admin's one-time password.
  const signaling = [await startNode('signaling', 'signaling-1', env)];
  const media = [await startNode('media', 'media-1', env), await startNode('media', 'media-2', env)];
  signaling.push(await startNode('signaling', 'signaling-2', env));
  return {
    media,
    signaling,
    async stop() {
      for (const node of [...signaling, ...media]) await node.stop();
    },
  };
}
