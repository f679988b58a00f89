// Helpers for browser tests: start the real kefu binary, launch headless Chromium,
// read WebRTC stats. Everything listens on 127.0.0.1 and is stopped by the test.
import net from 'node:net';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync, openSync, closeSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '../../..');
export const artifacts = join(repoRoot, 'tests/e2e/artifacts');
mkdirSync(artifacts, { recursive: true });

function binary(name) {
  const targetDir = process.env.CARGO_TARGET_DIR || join(repoRoot, 'target');
  return join(targetDir, 'debug', name);
}

/**
 * Where a kefu process's log goes: with TEST_LOG_DIR set (make test-browser sets it),
 * a file of its own in that folder, at debug, for tests/e2e/scan-logs.mjs to read
 * afterwards; else nowhere (or the terminal with TEST_LOG).
 */
export function logTarget(name) {
  const dir = process.env.TEST_LOG_DIR;
  if (dir) {
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${name}-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.log`);
    return { stderr: openSync(file, 'a'), level: 'debug' };
  }
  return { stderr: process.env.TEST_LOG ? 'inherit' : 'ignore', level: process.env.TEST_LOG ? 'debug' : 'warn' };
}

/**
 * Runs a kefu command-line tool beside a server (`kefu admin …`, `kefu-test-verify`):
 * its log joins the scanned ones with TEST_LOG_DIR; otherwise its error output is kept
 * for the error a failing run throws.
 */
export function runTool(file, args, env, input) {
  const stderr = process.env.TEST_LOG_DIR ? logTarget('tool').stderr : 'pipe';
  try {
    return execFileSync(file, args, { env, input, encoding: 'utf8', stdio: ['pipe', 'pipe', stderr] });
  } finally {
    if (typeof stderr === 'number') closeSync(stderr);
  }
}

export function kefuBinary() {
  return process.env.KEFU_BIN || binary('kefu');
}

/** Starts `kefu serve` on free ports; resolves once it printed its links. */
export async function startKefu(extraEnv = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'kefu-e2e-'));
  const env = {
    ...process.env,
    KEFU_DATA_DIR: dataDir,
    KEFU_SERVER__BIND: '127.0.0.1:0',
    KEFU_MEDIA__PORT: '0',
    KEFU_MEDIA__ADVERTISE_IP: '127.0.0.1',
    // The face models deploy/fetch-models.sh put in the repository.
    KEFU_VERIFICATION__MODELS_DIR: join(repoRoot, 'models'),
    KEFU_MODERATION__MODELS_DIR: join(repoRoot, 'models'),
    ...extraEnv,
  };
  // `undefined` in extraEnv means: leave the variable unset (use kefu's default).
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  // The harness's own choice of binary: kefu would read any KEFU_ variable as its
  // configuration and refuse the unknown key.
  delete env.KEFU_BIN;
  const log = logTarget('kefu');
  env.RUST_LOG = log.level;
  const child = spawn(kefuBinary(), ['serve'], {
    env,
    stdio: ['ignore', 'pipe', log.stderr],
  });
  let out = '';
  const ready = new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('kefu did not start in 20 s:\n' + out)), 20000);
    child.stdout.on('data', (d) => {
      out += d;
      if (/press Ctrl-C to stop/.test(out)) {
        clearTimeout(timer);
        ok();
      }
    });
    child.on('exit', (code) => fail(new Error(`kefu exited with ${code}:\n${out}`)));
  });
  await ready;
  const pick = (re) => {
    const m = out.match(re);
    if (!m) throw new Error(`kefu output lacks ${re}:\n${out}`);
    return m[1];
  };
  const exited = new Promise((ok) => child.on('exit', (code, signal) => ok({ code, signal })));
  const adminPassword = (out.match(/one-time password: (\S+)/) || [])[1];
  /** Runs a command of the kefu toolset against this server's data. */
  const run = (name, args, input) =>
    runTool(name === 'kefu' ? kefuBinary() : binary(name), args, env, input);
  return {
    child,
    env,
    adminPassword,
    run,
    baseUrl: pick(/http:\s+(\S+)/),
    mediaPort: Number(pick(/media: udp [\d.]+:(\d+)/)),
    /** Where the SFU's socket is bound (differs from mediaPort behind a relay). */
    mediaTcpPort: Number((out.match(/media: tcp [\d.]+:(\d+)/) || [])[1]),
    mediaBoundPort: Number((out.match(/bound at [\d.]+:(\d+)/) || out.match(/media: udp [\d.]+:(\d+)/))[1]),
    agentUrl: pick(/agent page:\s+(\S+)/),
    customerUrl: pick(/customer page:\s+(\S+)/),
    /** SIGTERM, then resolves with the exit status. */
    async stop() {
      child.kill('SIGTERM');
      let timer;
      const status = await Promise.race([
        exited,
        new Promise((ok) => (timer = setTimeout(() => ok({ code: null, signal: 'timeout' }), 15000))),
      ]);
      clearTimeout(timer);
      if (status.signal === 'timeout') child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
      return status;
    },
  };
}

/** A fresh headless Chromium with fake camera and microphone. */
export async function launchBrowser({ mobile = false, extraArgs = [] } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'kefu-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      '--allow-loopback-in-peer-connection',
      '--autoplay-policy=no-user-gesture-required',
      ...extraArgs,
    ],
    ...(mobile
      ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
      : { viewport: { width: 1280, height: 800 } }),
  });
  // kefu's pages run under a content security policy without 'unsafe-inline': any
  // violation (an inline script or style, a foreign source) fails the test on close.
  const violations = [];
  const watch = (p) =>
    p.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(`${p.url()}: ${m.text()}`);
    });
  context.pages().forEach(watch);
  context.on('page', watch);
  const page = context.pages()[0] || (await context.newPage());
  return {
    context,
    page,
    violations,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
      if (violations.length) throw new Error(`a page broke its content security policy:\n${violations.join('\n')}`);
    },
  };
}

/** What the page's peer connection received and which candidate pair it uses. */
export async function callStats(page) {
  return page.evaluate(async () => {
    const pc = window.kefu && window.kefu.pc;
    if (!pc) return null;
    const stats = await pc.getStats();
    const out = {
      videoFramesDecoded: 0, videoInbound: 0, videoBytesReceived: 0, freezeCount: 0, totalFreezesDuration: 0,
      audioPacketsReceived: 0, audioPacketsLost: 0, audioSamplesReceived: 0, audioConcealedSamples: 0,
      remotePort: null, remoteAddress: null, localPort: null, pairState: null,
      iceState: pc.iceConnectionState, at: Date.now(),
    };
    let pairId = null;
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        out.videoInbound += 1;
        out.videoFramesDecoded += s.framesDecoded || 0;
        out.videoBytesReceived += s.bytesReceived || 0;
        out.freezeCount += s.freezeCount || 0;
        out.totalFreezesDuration += s.totalFreezesDuration || 0;
      }
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        out.audioPacketsReceived += s.packetsReceived || 0;
        out.audioSamplesReceived += s.totalSamplesReceived || 0;
        out.audioPacketsLost += s.packetsLost || 0;
        out.audioConcealedSamples += s.concealedSamples || 0;
      }
      if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    });
    const pair = pairId && stats.get(pairId);
    if (pair) {
      out.pairState = pair.state;
      const local = stats.get(pair.localCandidateId);
      if (local) {
        out.localCandidateType = local.candidateType;
        out.localPort = local.port;
        out.localProtocol = local.protocol;
        out.relayProtocol = local.relayProtocol || null;
      }
      const remote = stats.get(pair.remoteCandidateId);
      if (remote) {
        out.remotePort = remote.port;
        out.remoteAddress = remote.address || remote.ip;
      }
    }
    return out;
  });
}

/** Polls `check` until it returns a truthy value or `ms` pass. */
export async function waitFor(what, ms, check) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await check();
    if (last && last.done) return last.value;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last && last.value)}`);
}

/**
 * The user-space impairment relay (`kefu-netem-relay`) on a free 127.0.0.1 port.
 * `cmd(line)` sends one command (`set PORT delay_ms=50 loss=0.05`, `block PORT`,
 * `rebind PORT`, `upstream ADDR`, `stats`) and resolves with its answer line.
 */
export async function startRelay() {
  const child = spawn(binary('kefu-netem-relay'), [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  const waiting = [];
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (waiting.length) waiting.shift()(line);
      else lines.push(line);
    }
  });
  const next = () => (lines.length ? Promise.resolve(lines.shift()) : new Promise((ok) => waiting.push(ok)));
  const first = await next();
  const m = first.match(/relay: udp [\d.]+:(\d+)/);
  if (!m) throw new Error(`relay said ${first}`);
  return {
    port: Number(m[1]),
    async cmd(line) {
      child.stdin.write(line + '\n');
      const answer = await next();
      if (answer.startsWith('error')) throw new Error(`relay: ${line}: ${answer}`);
      return answer;
    },
    stop() {
      child.kill('SIGTERM');
    },
  };
}

/**
 * A TCP proxy on a free 127.0.0.1 port in front of `targetPort`, for a page whose
 * HTTP and WebSocket must be cut off: `cut()` destroys every open connection (the
 * browser sees the WebSocket fail with 1006, the server sees it end without a close
 * frame), and `down` refuses new ones while true.
 */
export async function startTcpProxy(targetPort) {
  const open = new Set();
  const proxy = {
    down: false,
    port: 0,
    cut() {
      for (const s of open) s.destroy();
      open.clear();
    },
    stop() {
      proxy.cut();
      server.close();
    },
  };
  const server = net.createServer((client) => {
    if (proxy.down) return client.destroy();
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const [a, b] of [[client, upstream], [upstream, client]]) {
      open.add(a);
      a.pipe(b);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        open.delete(a);
        b.destroy();
      });
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  proxy.port = server.address().port;
  return proxy;
}

/** kefu whose SFU is reached only through a relay: it advertises the relay's port. */
export async function startKefuBehindRelay(extraEnv = {}) {
  const relay = await startRelay();
  const kefu = await startKefu({ KEFU_MEDIA__ADVERTISE_PORT: String(relay.port), ...extraEnv });
  await relay.cmd(`upstream 127.0.0.1:${kefu.mediaBoundPort}`);
  const stop = kefu.stop;
  kefu.stop = async () => {
    relay.stop();
    return stop();
  };
  return { kefu, relay };
}

/** Calls the REST API; returns { status, data }. */
export async function api(baseUrl, method, path, token, body) {
  const res = await fetch(`${baseUrl}/api/v1${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let data = text;
  try {
    data = JSON.parse(text);
  } catch (_) {}
  return { status: res.status, data };
}

/**
 * An agent `login` with the video service, created the way an operator would:
 * `kefu admin create-user`, then the bootstrap admin grants the service over the API.
 */
export async function agentWithVideoService(kefu, login, password) {
  kefu.run('kefu', ['admin', 'create-user', '--enterprise', '10000', '--login', login, '--role', 'agent',
    '--name', '李丽', '--id-number-stdin', '--capacity', '2', '--password-stdin'], '110101199003071234\n' + password + '\n');
  const admin = await api(kefu.baseUrl, 'POST', '/auth/login', null, { login: 'admin', password: kefu.adminPassword });
  if (admin.status !== 200) throw new Error(`admin login: ${JSON.stringify(admin)}`);
  const agents = await api(kefu.baseUrl, 'GET', '/agents', admin.data.token);
  const agent = agents.data.find((a) => a.login === login);
  const grant = await api(kefu.baseUrl, 'PUT', `/agents/${agent.id}/video-service`, admin.data.token, { enabled: true });
  if (grant.status !== 200) throw new Error(`grant: ${JSON.stringify(grant)}`);
  return admin.data.token;
}

/**
 * A recorded video call through the real pages: `login` (an agent with the video
 * service and a passed face check) calls out from `agent`'s workbench, the customer
 * opens the invite in `customer`'s page and consents, and both see each other.
 * Resolves once the recording notice showed and the customer decoded 30 frames:
 * { callId, agentToken }.
 */
export async function recordedVideoCall(kefu, agent, customer, login, password) {
  await agentWithVideoService(kefu, login, password);
  await signIn(agent.page, kefu.baseUrl, login, password);
  kefu.run('kefu-test-verify', [login, 'passed']);
  await agent.page.click('#video-call');
  await agent.page.waitForSelector('#invite:not([hidden])');
  const callId = await agent.page.evaluate(() => window.workbench.call.id);
  const agentToken = await agent.page.evaluate(() => window.workbench.token);
  await customer.page.goto(await agent.page.inputValue('#invite-url'));
  await customer.page.check('#agree');
  await customer.page.click('#accept');
  await agent.page.waitForSelector('#recording-notice:not([hidden])', { timeout: 20000 });
  await waitFor('the customer to see the agent', 20000, async () => {
    const s = await callStats(customer.page);
    return { done: s && s.videoFramesDecoded >= 30, value: s };
  });
  return { callId, agentToken };
}

/** Signs in on the workbench page. */
export async function signIn(page, baseUrl, login, password) {
  await page.goto(`${baseUrl}/workbench`);
  await page.fill('#login', login);
  await page.fill('#password', password);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#desk:not([hidden])');
}

/**
 * A coturn TURN server on 127.0.0.1 (UDP and TCP on one free port) with TURN REST
 * credentials; `stop()` ends it. Debian's coturn, installed by deploy/install-deps.sh.
 */
export async function startCoturn() {
  const port = await new Promise((ok, fail) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const p = srv.address().port;
      srv.close(() => ok(p));
    });
    srv.on('error', fail);
  });
  const dir = mkdtempSync(join(tmpdir(), 'kefu-coturn-'));
  const secret = `e2e-secret-${process.pid}`;
  const child = spawn('turnserver', [
    '-n', '--listening-ip=127.0.0.1', '--relay-ip=127.0.0.1', `--listening-port=${port}`,
    '--min-port=41000', '--max-port=41999', '--use-auth-secret', `--static-auth-secret=${secret}`,
    '--realm=kefu', '--allow-loopback-peers', '--no-tls', '--no-dtls', '--no-cli',
    `--userdb=${join(dir, 'turndb')}`, `--pidfile=${join(dir, 'pid')}`, '--log-file=stdout', '--simple-log',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  await waitFor('coturn to listen', 10000, async () => {
    const up = await new Promise((ok) => {
      const sock = net.connect(port, '127.0.0.1', () => { sock.destroy(); ok(true); });
      sock.on('error', () => ok(false));
    });
    return { done: up, value: log.slice(-300) };
  });
  return {
    port,
    secret,
    log: () => log,
    stop() {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Face photos (test-data/faces) and where each face is: the rectangle (x, y, w, h in
 * the photo) that, letterboxed into 640×480, puts the face at about 40 % of the
 * width, as a webcam would. obama.jpg looks at the camera, obama3.jpg is turned to
 * his own left, obama2.jpg to his own right; biden.jpg is someone else.
 */
export const FACE_CROPS = {
  'obama.jpg': [201, 39, 577, 432],
  'obama2.jpg': [0, 161, 626, 516],
  'obama3.jpg': [448, 190, 658, 493],
  'biden.jpg': [228, 119, 691, 518],
};

/** The face photos as data URLs, by file name. */
export function facePhotoDataUrls() {
  return Object.fromEntries(Object.keys(FACE_CROPS).map((name) => [
    name,
    `data:image/jpeg;base64,${readFileSync(join(repoRoot, 'test-data/faces', name)).toString('base64')}`,
  ]));
}

/**
 * Runs in the page before its scripts (addInitScript): a camera that films a photo.
 * getUserMedia for video without audio (the face check, the admin's 拍照) returns a
 * 640×480 canvas stream showing the chosen photo, cropped around the face and
 * letterboxed; other requests (calls) keep Chromium's fake devices.
 * window.__fakeCamera.show(name) changes the picture (null: nothing in front of the
 * camera); follow(selector) makes it follow the challenge shown in that element's
 * data-state / data-turn: the turned photo while a step asks for a turn, `face`
 * otherwise. It notes when the last step's pose went up (lastStepAt), when the
 * prompt said passed (passedAt), and each frame the page posted (frames: sent, answered,
 * state, the picture shown when it was sent).
 */
function fakeCameraScript({ photos, crops }) {
  const cam = {
    current: 'obama.jpg', face: 'obama.jpg', images: {}, opened: 0, frames: [],
    lastStepAt: null, passedAt: null, turnPhotos: { turn_left: 'obama3.jpg', turn_right: 'obama2.jpg' },
  };
  window.__fakeCamera = cam;
  let canvas = null;
  let ctx = null;
  let loading = null;
  const load = () => loading || (loading = Promise.all(Object.entries(photos).map(([name, url]) => new Promise((ok, fail) => {
    const img = new Image();
    img.onload = () => { cam.images[name] = img; ok(); };
    img.onerror = () => fail(new Error(`cannot load ${name}`));
    img.src = url;
  }))));
  cam.load = load;
  function draw() {
    if (!ctx) return;
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, 640, 480);
    const img = cam.current && cam.images[cam.current];
    if (!img) return;
    const [x, y, w, h] = crops[cam.current];
    const k = Math.min(640 / w, 480 / h);
    const dw = w * k;
    const dh = h * k;
    ctx.drawImage(img, x, y, w, h, (640 - dw) / 2, (480 - dh) / 2, dw, dh);
  }
  cam.show = (name) => {
    cam.current = name;
    draw();
  };
  cam.follow = (selector) => {
    const react = () => {
      const el = document.querySelector(selector);
      if (!el) return;
      const turn = el.dataset.state === 'step' ? el.dataset.turn : null;
      const want = turn ? cam.turnPhotos[turn] : cam.face;
      if (want !== cam.current) {
        cam.show(want);
        if (turn && Number(el.dataset.stepIndex) + 1 === Number(el.dataset.stepTotal)) cam.lastStepAt = performance.now();
      }
      if (el.dataset.state === 'passed' && cam.passedAt === null) cam.passedAt = performance.now();
    };
    new MutationObserver(react).observe(document, {
      subtree: true, attributes: true, attributeFilter: ['data-state', 'data-turn', 'data-step-index'],
    });
    react();
  };
  cam.reset = () => {
    cam.lastStepAt = null;
    cam.passedAt = null;
    cam.frames = [];
  };
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (c) => {
    if (!c || !c.video || c.audio) return original(c);
    await load();
    if (!canvas) {
      canvas = document.createElement('canvas');
      canvas.width = 640;
      canvas.height = 480;
      ctx = canvas.getContext('2d');
      // Repainted all along, so the stream keeps delivering frames.
      setInterval(draw, 66);
    }
    draw();
    cam.opened += 1;
    return canvas.captureStream(15);
  };
  // Frames as the page posts them, and what each answer said.
  const fetch0 = window.fetch.bind(window);
  window.fetch = async (input, init) => {
    const url = typeof input === 'string' ? input : input.url;
    if (!/\/frames$/.test(url)) return fetch0(input, init);
    const frame = { sent: performance.now(), shown: cam.current, answered: null, status: null, state: null };
    cam.frames.push(frame);
    const res = await fetch0(input, init);
    frame.answered = performance.now();
    frame.status = res.status;
    res.clone().json().then((p) => { frame.state = p.state; }, () => {});
    return res;
  };
}

/** Installs the photo camera in `target` (a page or a browser context), before a navigation. */
export async function installFakeCamera(target) {
  await target.addInitScript(fakeCameraScript, { photos: facePhotoDataUrls(), crops: FACE_CROPS });
}

/** Enrols `login`'s face with the given photos (file names under test-data/faces) over the API. */
export async function enrollFace(kefu, adminToken, login, names = ['obama.jpg']) {
  const agents = await api(kefu.baseUrl, 'GET', '/agents', adminToken);
  const agent = agents.data.find((a) => a.login === login);
  const photos = names.map((n) => readFileSync(join(repoRoot, 'test-data/faces', n)).toString('base64'));
  const r = await api(kefu.baseUrl, 'PUT', `/users/${agent.id}/face-reference`, adminToken, { photos });
  if (r.status !== 200) throw new Error(`enrol ${login}: ${JSON.stringify(r)}`);
  return agent.id;
}
