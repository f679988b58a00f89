// The server-side beauty filter on a real call: the agent's fake camera shows a face
// photo with sensor noise; the customer measures the high frequencies on the cheek in
// the frames it decodes, with the agent's settings on "none" (pure forwarding) and
// then, mid-call, on "natural" (through decode → beauty → encode).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startKefu, launchBrowser, callStats, waitFor, artifacts, repoRoot, agentWithVideoService, signIn, api } from './lib/kefu.mjs';

const PASSWORD = 'agent password 1';

function noisyFace() {
  mkdirSync(artifacts, { recursive: true });
  const path = join(artifacts, 'noisy-face.y4m');
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-loop', '1', '-i', join(repoRoot, 'test-data/astronaut.png'),
    '-vf', 'scale=640:480,noise=alls=24:allf=t', '-t', '3', '-r', '30', '-pix_fmt', 'yuv420p', path]);
  return path;
}

/** Mean squared Laplacian of luma on the cheek, over `n` decoded frames of `video`. */
async function cheekEnergy(page, n = 8, video = 'remote-video') {
  return page.evaluate(async ([n, video]) => {
    const v = document.getElementById(video);
    const c = document.createElement('canvas');
    let total = 0;
    for (let i = 0; i < n; i++) {
      c.width = v.videoWidth;
      c.height = v.videoHeight;
      const g = c.getContext('2d', { willReadFrequently: true });
      g.drawImage(v, 0, 0);
      // The cheek of the astronaut (x 186–210, y 118–138 of 512×512).
      const x0 = Math.round(c.width * 0.365), x1 = Math.round(c.width * 0.41);
      const y0 = Math.round(c.height * 0.232), y1 = Math.round(c.height * 0.27);
      const img = g.getImageData(0, 0, c.width, c.height).data;
      const luma = (x, y) => { const k = (y * c.width + x) * 4; return 0.299 * img[k] + 0.587 * img[k + 1] + 0.114 * img[k + 2]; };
      let e = 0, count = 0;
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
          const lap = 4 * luma(x, y) - luma(x - 1, y) - luma(x + 1, y) - luma(x, y - 1) - luma(x, y + 1);
          e += lap * lap;
          count++;
        }
      }
      total += e / count;
      await new Promise((r) => setTimeout(r, 120));
    }
    return total / n;
  }, [n, video]);
}

async function fps(page) {
  const a = await callStats(page);
  await new Promise((r) => setTimeout(r, 2000));
  const b = await callStats(page);
  return (b.videoFramesDecoded - a.videoFramesDecoded) / 2;
}

test('beauty on: the customer decodes a smoother face at full frame rate', async () => {
  const kefu = await startKefu();
  const agent = await launchBrowser({ extraArgs: [`--use-file-for-fake-video-capture=${noisyFace()}`] });
  const customer = await launchBrowser({ mobile: true });
  try {
    await agentWithVideoService(kefu, 'bella', PASSWORD);
    await signIn(agent.page, kefu.baseUrl, 'bella', PASSWORD);
    const token = await agent.page.evaluate(() => window.workbench.token);
    const none = await api(kefu.baseUrl, 'PUT', '/me/beauty', token, { preset: 'none' });
    assert.equal(none.status, 200);
    kefu.run('kefu-test-verify', ['bella', 'passed']);
    await agent.page.click('#video-call');
    await agent.page.waitForSelector('#invite:not([hidden])');
    await customer.page.goto(await agent.page.inputValue('#invite-url'));
    await customer.page.check('#agree');
    await customer.page.click('#accept');
    await waitFor('the customer to see the agent', 30000, async () => {
      const s = await callStats(customer.page);
      return { done: s && s.videoFramesDecoded >= 60, value: s };
    });
    const off = await cheekEnergy(customer.page);
    await customer.page.screenshot({ path: join(artifacts, 'customer-beauty-off.png') });

    // Natural, mid-call, through the dialog: applies from the next frames.
    await agent.page.click('#beauty-open');
    await agent.page.waitForSelector('#beauty-dialog[open]');
    await agent.page.selectOption('#beauty-preset', 'natural');
    await agent.page.click('#beauty-confirm');
    await agent.page.waitForSelector('#beauty-dialog', { state: 'hidden' });
    await new Promise((r) => setTimeout(r, 2000));
    const on = await cheekEnergy(customer.page);
    const rate = await fps(customer.page);
    await customer.page.screenshot({ path: join(artifacts, 'customer-beauty-on.png') });
    console.log(`cheek high-frequency energy: off ${off.toFixed(0)}, on ${on.toFixed(0)}; ${rate} fps with beauty on`);
    assert.ok(on < 0.8 * off, `beauty on ${on.toFixed(0)} vs off ${off.toFixed(0)}`);
    assert.ok(rate >= 25, `customer decodes ${rate} fps with beauty on`);
    const metrics = await (await fetch(`${kefu.baseUrl}/metrics`)).text();
    const processed = Number((metrics.match(/^kefu_beauty_latency_seconds_count (\d+)/m) || [])[1]);
    assert.ok(processed > 30, `frames through the pipeline: ${processed}`);
  } finally {
    await agent.close();
    await customer.close();
    await kefu.stop();
  }
});

test('the beauty dialog: natural first, cancel keeps, confirm persists, reset returns to natural', async () => {
  const kefu = await startKefu();
  const agent = await launchBrowser();
  try {
    await agentWithVideoService(kefu, 'dina', PASSWORD);
    await signIn(agent.page, kefu.baseUrl, 'dina', PASSWORD);
    const page = agent.page;
    const values = () => page.evaluate(() => ({
      preset: document.getElementById('beauty-preset').value,
      smoothing: Number(document.getElementById('beauty-smoothing').value),
    }));
    const saved = async () => {
      const token = await page.evaluate(() => window.workbench.token);
      return (await api(kefu.baseUrl, 'GET', '/me/beauty', token)).data;
    };

    await page.click('#beauty-open');
    await page.waitForSelector('#beauty-dialog[open]');
    assert.deepEqual(await values(), { preset: 'natural', smoothing: 0.35 }, 'opens on natural the first time');
    await page.screenshot({ path: join(artifacts, 'workbench-beauty-dialog.png') });

    // Change, then cancel: nothing changes.
    await page.fill('#beauty-smoothing', '0.9');
    await page.click('#beauty-cancel');
    await page.waitForSelector('#beauty-dialog', { state: 'hidden' });
    assert.equal((await saved()).params.smoothing, 0.35);
    await page.click('#beauty-open');
    await page.waitForSelector('#beauty-dialog[open]');
    assert.deepEqual(await values(), { preset: 'natural', smoothing: 0.35 }, 'cancel kept the settings');

    // A preset shows its own values; adjust and confirm: kept, and shown next time.
    await page.selectOption('#beauty-preset', 'smooth');
    assert.equal((await values()).smoothing, 0.7);
    await page.fill('#beauty-smoothing', '0.8');
    await page.click('#beauty-confirm');
    await page.waitForSelector('#beauty-dialog', { state: 'hidden' });
    const after = await saved();
    assert.equal(after.preset, 'smooth');
    assert.equal(after.params.smoothing, 0.8);
    await page.reload();
    await page.waitForSelector('#desk:not([hidden])');
    await page.click('#beauty-open');
    await page.waitForSelector('#beauty-dialog[open]');
    assert.deepEqual(await values(), { preset: 'smooth', smoothing: 0.8 }, 'reopens on the last confirmed');

    // Reset: natural again, kept.
    await page.click('#beauty-reset');
    await page.waitForFunction(() => document.getElementById('beauty-preset').value === 'natural');
    assert.deepEqual(await values(), { preset: 'natural', smoothing: 0.35 });
    assert.equal((await saved()).preset, 'natural');
  } finally {
    await agent.close();
    await kefu.stop();
  }
});

test('the dialog previews the server-processed stream with the settings being tried', async () => {
  const kefu = await startKefu();
  const agent = await launchBrowser({ extraArgs: [`--use-file-for-fake-video-capture=${noisyFace()}`] });
  try {
    await agentWithVideoService(kefu, 'erin', PASSWORD);
    await signIn(agent.page, kefu.baseUrl, 'erin', PASSWORD);
    const page = agent.page;
    const token = await page.evaluate(() => window.workbench.token);
    const previewFrames = () => page.evaluate(() => {
      const v = document.getElementById('beauty-preview');
      return v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
    });
    await page.click('#beauty-open');
    await page.waitForSelector('#beauty-dialog[open]');
    await waitFor('the preview to play', 30000, async () => {
      const n = await previewFrames();
      return { done: n >= 30, value: n };
    });
    // What plays is the stream the SFU sends back, not the local camera.
    const remote = await page.evaluate(() => {
      const shown = document.getElementById('beauty-preview').srcObject.getVideoTracks()[0];
      const received = window.kefuPreview.pc.getReceivers().map((r) => r.track);
      const local = window.kefuPreview.camera.getVideoTracks()[0];
      return received.includes(shown) && shown !== local;
    });
    assert.ok(remote, 'the preview shows the received (server-processed) track');

    // Tried, not confirmed: "none", then "smooth"; the preview follows each.
    await page.selectOption('#beauty-preset', 'none');
    await new Promise((r) => setTimeout(r, 2000));
    const none = await cheekEnergy(page, 8, 'beauty-preview');
    await page.selectOption('#beauty-preset', 'smooth');
    await new Promise((r) => setTimeout(r, 2000));
    const smooth = await cheekEnergy(page, 8, 'beauty-preview');
    await page.screenshot({ path: join(artifacts, 'workbench-beauty-preview.png') });
    console.log(`preview cheek high-frequency energy: none ${none.toFixed(0)}, smooth ${smooth.toFixed(0)}`);
    assert.ok(smooth < 0.8 * none, `preview smooth ${smooth.toFixed(0)} vs none ${none.toFixed(0)}`);
    assert.equal((await api(kefu.baseUrl, 'GET', '/me/beauty', token)).data.preset, 'natural', 'trying saves nothing');

    // Cancel closes the preview, on the page and on the server.
    await page.click('#beauty-cancel');
    await page.waitForSelector('#beauty-dialog', { state: 'hidden' });
    // The dialog's close event comes a moment after it hides.
    await page.waitForFunction(() => window.kefuPreview.pc === null && window.kefuPreview.ws === null);
    await waitFor('the server to close the preview', 5000, async () => {
      const r = await api(kefu.baseUrl, 'PUT', '/me/beauty/preview', token, { preset: 'smooth' });
      return { done: r.status === 404, value: r.status };
    });
  } finally {
    await agent.close();
    await kefu.stop();
  }
});
