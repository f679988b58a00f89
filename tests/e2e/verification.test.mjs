// Face verification through the real pages and the real face engine: the workbench's
// dialog (camera challenge, the call going out by itself after a pass, asked again
// after three calls), the phone taking over through a single-use link, and the admin
// console (enrolment with each bad photo's reason, a lock after five failures and its
// clearing, failure reasons on the records). The camera films real photos: the test
// follows the random challenge by showing the turned photo it asks for.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import {
  startKefu, launchBrowser, artifacts, api, signIn, agentWithVideoService, repoRoot, waitFor,
  installFakeCamera, enrollFace, facePhotoDataUrls, FACE_CROPS,
} from './lib/kefu.mjs';

const PASSWORD = 'agent password 1';
/** Switch to the last pose → the prompt says passed, per passed check (ms). */
const latency = { samples_ms: [], answering_frame_ms: [] };

after(() => {
  if (!latency.samples_ms.length) return;
  console.log(`verification latency (last pose shown → passed): ${latency.samples_ms.join(', ')} ms; `
    + `answering frame posted → answered: ${latency.answering_frame_ms.join(', ')} ms`);
});

/** Waits for the challenge in `page` to pass, then notes how long the last step took. */
async function passedChallenge(page, what) {
  await page.waitForFunction(() => {
    const p = document.getElementById('verify-prompt');
    return p && ['passed', 'failed'].includes(p.dataset.state);
  }, null, { timeout: 30000 });
  const seen = await page.evaluate(() => {
    const p = document.getElementById('verify-prompt');
    const cam = window.__fakeCamera;
    const answering = cam.frames.filter((f) => f.state === 'passed')[0];
    return {
      state: p.dataset.state, reason: p.dataset.reason, detail: p.dataset.detail,
      lastStepAt: cam.lastStepAt, passedAt: cam.passedAt,
      answering: answering ? answering.answered - answering.sent : null,
      frames: cam.frames.map((f) => `${f.shown}:${f.status}:${f.state}`),
    };
  });
  assert.equal(seen.state, 'passed', `${what}: ${JSON.stringify(seen)}`);
  assert.ok(seen.lastStepAt !== null && seen.passedAt !== null, `${what}: the last pose and the pass were seen`);
  const ms = Math.round(seen.passedAt - seen.lastStepAt);
  latency.samples_ms.push(ms);
  if (seen.answering !== null) latency.answering_frame_ms.push(Math.round(seen.answering));
  writeFileSync(join(artifacts, 'verification-latency.json'), JSON.stringify(latency, null, 2) + '\n');
  console.log(`${what}: last pose → passed in ${ms} ms (answering frame ${Math.round(seen.answering)} ms, ${seen.frames.length} frames)`);
  return seen;
}

async function invited(page) {
  await page.waitForSelector('#invite:not([hidden])', { timeout: 15000 });
  const url = await page.inputValue('#invite-url');
  assert.match(url, /\/invite\/[A-Za-z0-9]{24}$/);
  await page.waitForFunction(() => document.getElementById('invite-qr').naturalWidth > 0);
  return url;
}

async function cancelCall(page) {
  await page.click('#cancel-call');
  await page.waitForSelector('#call-buttons:not([hidden])', { timeout: 10000 });
}

const dialogOpen = (page) => page.evaluate(() => document.getElementById('verify-dialog').open);

test('the workbench checks the face from the call button; the call goes out by itself; the 4th call asks again, a failure retries', async () => {
  const kefu = await startKefu();
  const agent = await launchBrowser();
  try {
    const adminToken = await agentWithVideoService(kefu, 'wendy', PASSWORD);
    await enrollFace(kefu, adminToken, 'wendy');
    await installFakeCamera(agent.page);
    await signIn(agent.page, kefu.baseUrl, 'wendy', PASSWORD);
    await agent.page.evaluate(() => window.__fakeCamera.follow('#verify-prompt'));

    // The gate refuses the call; the dialog opens and runs the challenge.
    await agent.page.click('#video-call');
    await agent.page.waitForSelector('#verify-dialog[open]');
    await agent.page.waitForSelector('#verify-prompt[data-state=step]', { timeout: 15000 });
    await agent.page.screenshot({ path: join(artifacts, 'verification-step.png') });
    await passedChallenge(agent.page, 'workbench check 1');

    // No second click: the call asked for goes out.
    await invited(agent.page);
    assert.equal(await dialogOpen(agent.page), false, 'the dialog closed after the pass');
    assert.equal(await agent.page.evaluate(() => window.workbench.call.kind), 'video');
    await agent.page.screenshot({ path: join(artifacts, 'verification-call-proceeds.png') });
    await cancelCall(agent.page);

    // Calls two and three need nothing; the fourth asks again.
    for (let n = 2; n <= 3; n++) {
      await agent.page.click('#voice-call');
      await invited(agent.page);
      assert.equal(await dialogOpen(agent.page), false, `call ${n} needs no check`);
      await cancelCall(agent.page);
    }
    // This time someone else is in front of the camera first: refused with its reason,
    // and 重试 waits out the back-off by itself, then the right person passes.
    await agent.page.evaluate(() => { window.__fakeCamera.face = 'biden.jpg'; window.__fakeCamera.show('biden.jpg'); });
    await agent.page.click('#voice-call');
    await agent.page.waitForSelector('#verify-dialog[open]');
    await agent.page.waitForSelector('#verify-prompt[data-state=failed][data-reason=different_person]', { timeout: 15000 });
    assert.equal(await agent.page.textContent('#verify-prompt'),
      await agent.page.evaluate(() => KefuStrings.t('verify.failed', { reason: KefuStrings.t('verify.reason.different_person') })));
    assert.equal(await agent.page.isVisible('#verify-retry'), true);
    await agent.page.screenshot({ path: join(artifacts, 'verification-failed.png') });
    await agent.page.evaluate(() => {
      window.__fakeCamera.reset();
      window.__fakeCamera.face = 'obama.jpg';
      window.__fakeCamera.show('obama.jpg');
    });
    await agent.page.click('#verify-retry');
    await agent.page.waitForSelector('#verify-dialog[data-phase=backoff]');
    await passedChallenge(agent.page, 'workbench check 2');
    await invited(agent.page);
    assert.equal(await dialogOpen(agent.page), false);
    assert.equal(await agent.page.evaluate(() => window.workbench.call.kind), 'voice', 'the kind asked for');
    await cancelCall(agent.page);

    const records = await api(kefu.baseUrl, 'GET', '/verifications', adminToken);
    assert.deepEqual(records.data.map((r) => [r.passed, r.channel, r.failure_reason]),
      [[true, 'workbench', null], [false, 'workbench', 'different_person'], [true, 'workbench', null]]);
  } finally {
    await agent.close();
    await kefu.stop();
  }
});

test('the phone takes over the check through a single-use link; the workbench calls by itself', async () => {
  const kefu = await startKefu();
  const agent = await launchBrowser();
  const phone = await launchBrowser({ mobile: true });
  try {
    const adminToken = await agentWithVideoService(kefu, 'paul', PASSWORD);
    await enrollFace(kefu, adminToken, 'paul');
    // The computer's camera films nobody: only the phone can pass.
    await installFakeCamera(agent.page);
    await installFakeCamera(phone.context);
    await signIn(agent.page, kefu.baseUrl, 'paul', PASSWORD);
    await agent.page.evaluate(() => { window.__fakeCamera.face = null; window.__fakeCamera.show(null); });

    await agent.page.click('#video-call');
    await agent.page.waitForSelector('#verify-dialog[data-phase=running]');
    await agent.page.waitForFunction(() => window.__fakeCamera.frames.some((f) => f.state));
    await agent.page.click('#verify-use-phone');
    await agent.page.waitForSelector('#verify-dialog[data-phase=phone]');
    await agent.page.waitForSelector('#verify-qr svg');
    const link = await agent.page.inputValue('#verify-phone-url');
    assert.match(link, /\/verify\/[A-Za-z0-9_-]{20,}$/);
    await agent.page.screenshot({ path: join(artifacts, 'verification-phone-qr.png') });
    const framesAtHandover = await agent.page.evaluate(() => window.__fakeCamera.frames.length);

    await phone.page.goto(link);
    await phone.page.evaluate(() => window.__fakeCamera.follow('#verify-prompt'));
    await phone.page.screenshot({ path: join(artifacts, 'verification-phone-start.png') });
    await phone.page.click('#verify-start');
    await phone.page.waitForSelector('body[data-phase=running]');
    await phone.page.waitForSelector('#verify-prompt[data-state=step]', { timeout: 15000 });
    await phone.page.screenshot({ path: join(artifacts, 'verification-phone-step.png') });
    await passedChallenge(phone.page, 'phone check');
    await phone.page.waitForSelector('body[data-phase=passed]');
    await phone.page.screenshot({ path: join(artifacts, 'verification-phone-passed.png') });

    // The workbench learns it from the event channel and calls out by itself.
    await invited(agent.page);
    assert.equal(await dialogOpen(agent.page), false);
    const framesAfter = await agent.page.evaluate(() => window.__fakeCamera.frames.length);
    assert.equal(framesAfter, framesAtHandover, 'the workbench sent no frames of its own after the hand-over');

    // The link was used: a third page is told so (by code).
    const again = await phone.context.newPage();
    await again.goto(link);
    await again.click('#verify-start');
    await again.waitForSelector('#verify-error[data-error=link_used]');
    assert.equal(await again.textContent('#verify-error'), await again.evaluate(() => KefuStrings.t('error.link_used')));
    await again.screenshot({ path: join(artifacts, 'verification-phone-link-used.png') });

    const records = await api(kefu.baseUrl, 'GET', '/verifications', adminToken);
    assert.deepEqual(records.data.map((r) => [r.passed, r.channel]), [[true, 'phone']]);
  } finally {
    await agent.close();
    await phone.close();
    await kefu.stop();
  }
});

/** A picture made in the page from the face photos, as a file for the file input. */
async function madePhoto(page, what) {
  const dataUrl = await page.evaluate(async ({ what, photos, crops }) => {
    const load = (name) => new Promise((ok, fail) => {
      const img = new Image();
      img.onload = () => ok(img);
      img.onerror = fail;
      img.src = photos[name];
    });
    const canvas = document.createElement('canvas');
    const ctx = canvas.getContext('2d');
    /** The photo's face crop letterboxed into w×h at (dx, 0). */
    const framed = (img, name, dx, w, h) => {
      const [x, y, cw, ch] = crops[name];
      const k = Math.min(w / cw, h / ch);
      ctx.drawImage(img, x, y, cw, ch, dx + (w - cw * k) / 2, (h - ch * k) / 2, cw * k, ch * k);
    };
    const obama = await load('obama.jpg');
    if (what === 'several') {
      canvas.width = 1280;
      canvas.height = 480;
      framed(obama, 'obama.jpg', 0, 640, 480);
      framed(await load('biden.jpg'), 'biden.jpg', 640, 640, 480);
    } else if (what === 'small') {
      const k = 220 / Math.max(obama.width, obama.height);
      canvas.width = Math.round(obama.width * k);
      canvas.height = Math.round(obama.height * k);
      ctx.drawImage(obama, 0, 0, canvas.width, canvas.height);
    } else {
      canvas.width = obama.width;
      canvas.height = obama.height;
      ctx.filter = what === 'dark' ? 'brightness(0.12)' : 'blur(12px)';
      ctx.drawImage(obama, 0, 0);
    }
    return canvas.toDataURL('image/jpeg', 0.92);
  }, { what, photos: facePhotoDataUrls(), crops: FACE_CROPS });
  return { name: `${what}.jpg`, mimeType: 'image/jpeg', buffer: Buffer.from(dataUrl.split(',')[1], 'base64') };
}

const facePhoto = (name) => ({ name, mimeType: 'image/jpeg', buffer: readFileSync(join(repoRoot, 'test-data/faces', name)) });

test('the admin console enrols faces (each bad photo says why), clears a lock, and shows failure reasons', async () => {
  const kefu = await startKefu();
  const browser = await launchBrowser();
  const page = browser.page;
  try {
    const adminToken = await agentWithVideoService(kefu, 'ella', PASSWORD);
    await installFakeCamera(page);
    await page.goto(`${kefu.baseUrl}/admin`);
    await page.fill('#login', 'admin');
    await page.fill('#password', kefu.adminPassword);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#console:not([hidden])');
    const row = page.locator('#agents tr[data-login=ella]');
    await page.waitForSelector('#agents tr[data-login=ella][data-enrolled=false][data-locked=false]');
    assert.equal(await row.locator('.face-state').textContent(), await page.evaluate(() => KefuStrings.t('adm.face.not_enrolled')));

    // The enterprise keeps enrolment photos (encrypted).
    await page.check('#keep-photos');
    await waitFor('the setting to be saved', 5000, async () => {
      const s = await api(kefu.baseUrl, 'GET', '/enterprise/verification-settings', adminToken);
      return { done: s.data.keep_enrollment_photos === true, value: s.data };
    });

    await row.locator('[data-action=enroll]').click();
    await page.waitForSelector('#enroll-dialog[open]');
    const bad = [
      ['photo_not_an_image', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('这不是照片') }],
      ['photo_no_face', { name: 'coffee.png', mimeType: 'image/png', buffer: readFileSync(join(repoRoot, 'test-data/coffee.png')) }],
      ['photo_several_faces', await madePhoto(page, 'several')],
      ['photo_too_dark', await madePhoto(page, 'dark')],
      ['photo_too_blurry', await madePhoto(page, 'blurry')],
      ['photo_face_too_small', await madePhoto(page, 'small')],
    ];
    for (const [code, file] of bad) {
      await page.setInputFiles('#enroll-files', file);
      await page.waitForSelector('#enroll-photos li');
      await page.click('#enroll-submit');
      await page.waitForSelector(`#enroll-error[data-error=${code}][data-index="0"]`, { timeout: 15000 });
      const shown = await page.textContent('#enroll-error');
      const expected = await page.evaluate((c) => KefuStrings.t('adm.enroll_photo_error', { n: 1, text: KefuStrings.t(`error.${c}`) }), code);
      assert.equal(shown, expected, code);
      assert.doesNotMatch(shown, /[a-z]{2,}/, `${code}: no English on the screen (format names like JPEG aside)`);
      if (code === 'photo_several_faces') await page.screenshot({ path: join(artifacts, 'admin-enroll-error.png') });
      await page.click('#enroll-photos [data-action=remove-photo]');
      await page.waitForSelector('#enroll-error', { state: 'hidden' });
    }
    // Two photos, the second one bad: its number is named.
    await page.setInputFiles('#enroll-files', [facePhoto('obama.jpg'), await madePhoto(page, 'dark')]);
    await page.waitForFunction(() => document.querySelectorAll('#enroll-photos li').length === 2);
    await page.click('#enroll-submit');
    await page.waitForSelector('#enroll-error[data-error=photo_too_dark][data-index="1"]', { timeout: 15000 });
    assert.match(await page.textContent('#enroll-error'), /第 2 张/);
    await page.click('#enroll-photos li:nth-child(2) [data-action=remove-photo]');

    // The good photo, and one taken with the camera: enrolled.
    await page.click('#enroll-camera');
    await page.waitForSelector('#enroll-capture:not([hidden])');
    await page.waitForFunction(() => document.getElementById('enroll-video').videoWidth > 0);
    await page.click('#enroll-shoot');
    await page.waitForFunction(() => document.querySelectorAll('#enroll-photos li').length === 2);
    await page.click('#enroll-submit');
    await page.waitForSelector('#enroll-done:not([hidden])', { timeout: 15000 });
    await page.waitForSelector('#agents tr[data-login=ella][data-enrolled=true]');
    await page.screenshot({ path: join(artifacts, 'admin-enrolled.png') });
    await page.click('#enroll-close');
    const agentId = await row.getAttribute('data-id');
    const ref = await api(kefu.baseUrl, 'GET', `/users/${agentId}/face-reference`, adminToken);
    assert.equal(ref.data.photo_count, 2);
    assert.equal(ref.data.photos_kept, true);
    // The enrolment is in the audit log: who, when, whose face.
    const audit = await api(kefu.baseUrl, 'GET', '/audit', adminToken);
    const enrolled = audit.data.filter((e) => e.action === 'face_reference_enrolled');
    assert.equal(enrolled.length, 1, JSON.stringify(audit.data));
    assert.equal(enrolled[0].target_id, agentId);
    assert.equal(enrolled[0].actor_role, 'admin');
    assert.ok(Math.abs(Date.now() - enrolled[0].at) < 120000, 'stamped now');

    // Someone else fails five times (a frame of another face each); the fifth locks.
    const biden = await page.evaluate(async ({ url, crop }) => {
      const img = new Image();
      img.src = url;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = 640;
      c.height = 480;
      const [x, y, w, h] = crop;
      const k = Math.min(640 / w, 480 / h);
      c.getContext('2d').drawImage(img, x, y, w, h, (640 - w * k) / 2, (480 - h * k) / 2, w * k, h * k);
      return c.toDataURL('image/jpeg', 0.85).split(',')[1];
    }, { url: facePhotoDataUrls()['biden.jpg'], crop: FACE_CROPS['biden.jpg'] });
    const ella = await api(kefu.baseUrl, 'POST', '/auth/login', null, { login: 'ella', password: PASSWORD });
    const token = ella.data.token;
    for (let n = 1; n <= 5; n++) {
      let start = await api(kefu.baseUrl, 'POST', '/me/verification/attempts', token);
      if (start.status === 429) {
        await new Promise((r) => setTimeout(r, start.data.detail.retry_after_ms + 50));
        start = await api(kefu.baseUrl, 'POST', '/me/verification/attempts', token);
      }
      assert.equal(start.status, 201, `attempt ${n}: ${JSON.stringify(start.data)}`);
      const res = await fetch(`${kefu.baseUrl}/api/v1/me/verification/attempts/${start.data.id}/frames`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'image/jpeg' },
        body: Buffer.from(biden, 'base64'),
      });
      const progress = await res.json();
      assert.deepEqual([progress.state, progress.reason], ['failed', 'different_person'], `attempt ${n}`);
    }
    const refused = await api(kefu.baseUrl, 'POST', '/me/verification/attempts', token);
    assert.equal(refused.status, 423, 'locked after five failures');

    await page.evaluate(() => window.adminConsole.loadAgents());
    await page.waitForSelector('#agents tr[data-login=ella][data-locked=true]');
    assert.equal(await row.locator('.lock-state').textContent(), await page.evaluate(() => KefuStrings.t('adm.lock.locked')));
    await page.screenshot({ path: join(artifacts, 'admin-locked.png') });
    await row.locator('[data-action=clear-lock]').click();
    await page.waitForSelector('#agents tr[data-login=ella][data-locked=false]');
    assert.equal(await row.locator('[data-action=clear-lock]').isVisible(), false);
    const again = await api(kefu.baseUrl, 'POST', '/me/verification/attempts', token);
    assert.equal(again.status, 201, `after clearing: ${JSON.stringify(again.data)}`);

    // The records say why each check failed, in the catalogue's words.
    await page.click('#filters button[type=submit]');
    await page.waitForFunction(() => document.querySelectorAll('#verifications td[data-reason=different_person]').length === 5);
    const reasons = await page.$$eval('#verifications td.failure-reason[data-reason]', (tds) => tds.map((td) => td.textContent));
    const expected = await page.evaluate(() => KefuVerify.reasonText('different_person'));
    for (const text of reasons) assert.ok(text.startsWith(expected), text);
    assert.match(await page.textContent('#verifications tbody'), /工作台/);
    await page.screenshot({ path: join(artifacts, 'admin-verification-reasons.png'), fullPage: true });
  } finally {
    await browser.close();
    await kefu.stop();
  }
});
