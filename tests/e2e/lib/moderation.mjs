// Helpers of the moderation browser tests and latency benchmark: a fake camera that
// shows the test-only classifier's marker (magenta) on demand, and a watcher of the
// other party's <video> that notes when it first showed the marker and then black.
import { waitFor, launchBrowser } from './kefu.mjs';

/** A camera painting a grey-blue scene with a moving square, or all magenta once
 *  window.__markerCamera.marker is set. */
export function markerCameraScript() {
  const cam = { marker: false, markerSince: null };
  window.__markerCamera = cam;
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (c) => {
    if (!c || !c.video) return original(c);
    const canvas = document.createElement('canvas');
    canvas.width = 640;
    canvas.height = 480;
    const ctx = canvas.getContext('2d');
    let n = 0;
    const draw = () => {
      n += 1;
      ctx.fillStyle = cam.marker ? '#ff00ff' : '#4a6070';
      ctx.fillRect(0, 0, 640, 480);
      ctx.fillStyle = '#dddddd';
      ctx.fillRect((n * 7) % 600, 200, 40, 40);
    };
    draw();
    setInterval(draw, 50);
    const stream = canvas.captureStream(20);
    if (c.audio) (await original({ audio: c.audio })).getAudioTracks().forEach((t) => stream.addTrack(t));
    return stream;
  };
}

/** Watches #remote-video: when it first showed the marker, and first black after that. */
export function watchRemote(page) {
  return page.evaluate(() => {
    const w = (window.__remoteWatch = { firstMarker: null, firstBlack: null, last: null });
    const c = document.createElement('canvas');
    c.width = 32;
    c.height = 24;
    const ctx = c.getContext('2d', { willReadFrequently: true });
    setInterval(() => {
      const v = document.getElementById('remote-video');
      if (!v || !v.videoWidth) return;
      ctx.drawImage(v, 0, 0, 32, 24);
      const d = ctx.getImageData(0, 0, 32, 24).data;
      let r = 0, g = 0, b = 0;
      for (let i = 0; i < d.length; i += 4) { r += d[i]; g += d[i + 1]; b += d[i + 2]; }
      const px = d.length / 4;
      [r, g, b] = [r / px, g / px, b / px];
      w.last = [Math.round(r), Math.round(g), Math.round(b)];
      const now = performance.now();
      if (r > 150 && b > 150 && g < 110) w.firstMarker ??= now;
      else if (r < 40 && g < 40 && b < 40 && w.firstMarker !== null) w.firstBlack ??= now;
    }, 30);
  });
}

export async function blurLatency(page) {
  const w = await waitFor('the other party to get black video', 15000, async () => {
    const v = await page.evaluate(() => window.__remoteWatch);
    return { done: v.firstBlack !== null, value: v };
  });
  return w.firstBlack - w.firstMarker;
}


/** An agent's desktop browser and a customer's phone browser, both with the marker camera. */
export async function markedBrowsers() {
  const agent = await launchBrowser();
  const customer = await launchBrowser({ mobile: true });
  await customer.context.addInitScript(markerCameraScript);
  await agent.context.addInitScript(markerCameraScript);
  return { agent, customer };
}
