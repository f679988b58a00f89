// The admin console's data retention and agent removal: a shorter retention is
// confirmed in the page's own dialog before it is saved, the server's range error is
// told in Chinese (and nothing is stored), and a removed agent disappears from the
// list and can no longer sign in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startKefu, launchBrowser, artifacts, api, enrollFace } from './lib/kefu.mjs';

/** Visible text with a Latin letter in it (an untranslated string), if any. */
const latin = (text) => text.match(/[A-Za-z][A-Za-z ._-]*/g);

test('an admin sets data retention after confirming, and removes an agent', async () => {
  const kefu = await startKefu();
  const browser = await launchBrowser();
  const page = browser.page;
  // Every confirmation is the page's own <dialog>: a native one would speak the
  // browser's language.
  const nativeDialogs = [];
  page.on('dialog', (d) => {
    nativeDialogs.push(d.message());
    d.dismiss().catch(() => {});
  });
  try {
    for (const [login, name] of [['erin', '吴二'], ['fred', '郑三']]) {
      kefu.run('kefu', ['admin', 'create-user', '--enterprise', '10000', '--login', login, '--role', 'agent',
        '--name', name, '--id-number-stdin', '--password-stdin'], `110101199003071234\n${login} password 1\n`);
    }
    const token = (await api(kefu.baseUrl, 'POST', '/auth/login', null, { login: 'admin', password: kefu.adminPassword })).data.token;
    const erinId = await enrollFace(kefu, token, 'erin');
    const stored = async () => {
      const r = await api(kefu.baseUrl, 'GET', '/enterprise/retention-settings', token);
      assert.equal(r.status, 200, JSON.stringify(r));
      return r.data;
    };
    const keepAll = { recordings_days: null, verification_days: null, moderation_days: null, face_reference_days: null };
    assert.deepEqual(await stored(), keepAll, 'nothing is deleted before an admin says so');

    await page.goto(`${kefu.baseUrl}/admin`);
    await page.fill('#login', 'admin');
    await page.fill('#password', kefu.adminPassword);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#console:not([hidden])');
    await page.waitForSelector('#ret-save:not([disabled])');
    const section = page.locator('#retention');
    for (const id of ['#ret-recordings', '#ret-verification', '#ret-moderation', '#ret-face-reference']) {
      assert.equal(await page.inputValue(id), '', `${id} starts empty (kept)`);
      assert.equal(await page.getAttribute(id, 'placeholder'), '永久保留');
    }
    const intro = await section.innerText();
    assert.match(intro, /数据保留/);
    assert.match(intro, /自通话开始之日起计算/);
    assert.match(intro, /重新录入人脸/);

    // Recordings kept 30 days instead of for ever: the page asks first.
    await page.fill('#ret-recordings', '30');
    await page.click('#ret-save');
    await page.waitForSelector('#confirm-dialog[open]');
    const dialog = page.locator('#confirm-dialog');
    const asked = await dialog.innerText();
    assert.match(asked, /缩短数据保留期限/);
    assert.match(asked, /通话录像：永久保留 → 30 天/);
    assert.match(asked, /下次每日清理时被永久删除/);
    assert.equal(latin(asked), null, `the dialog is all Chinese: ${asked}`);
    await page.screenshot({ path: join(artifacts, 'admin-retention-confirm.png') });

    // 取消 stores nothing.
    await page.click('#confirm-cancel');
    await page.waitForSelector('#confirm-dialog', { state: 'hidden' });
    assert.deepEqual(await stored(), keepAll, 'cancelled: nothing stored');
    assert.equal(await page.isVisible('#retention-saved'), false);

    await page.click('#ret-save');
    await page.waitForSelector('#confirm-dialog[open]');
    await page.click('#confirm-ok');
    await page.waitForSelector('#retention-saved:not([hidden])');
    assert.deepEqual(await stored(), { ...keepAll, recordings_days: 30 });

    // After a reload the page shows what is stored.
    await page.reload();
    await page.waitForSelector('#console:not([hidden])');
    await page.waitForSelector('#ret-save:not([disabled])');
    assert.equal(await page.inputValue('#ret-recordings'), '30');
    for (const id of ['#ret-verification', '#ret-moderation', '#ret-face-reference']) {
      assert.equal(await page.inputValue(id), '', `${id} is still kept`);
    }

    // Longer deletes nothing sooner: saved without asking.
    await page.fill('#ret-recordings', '90');
    await page.click('#ret-save');
    await page.waitForSelector('#retention-saved:not([hidden])');
    assert.equal(await page.isVisible('#confirm-dialog'), false, 'no confirmation for a longer retention');
    assert.deepEqual(await stored(), { ...keepAll, recordings_days: 90 });

    // 0 days: the server refuses it (422, the field named) and the page says so in Chinese.
    await page.fill('#ret-moderation', '0');
    await page.click('#ret-save');
    await page.waitForSelector('#retention-error:not([hidden])');
    const error = await page.textContent('#retention-error');
    assert.equal(error, '保留天数须为 1–3650 之间的整数，留空表示永久保留（请检查：内容审核事件）');
    assert.equal(await page.getAttribute('#ret-moderation', 'aria-invalid'), 'true');
    assert.equal(await page.isVisible('#retention-saved'), false);
    assert.deepEqual(await stored(), { ...keepAll, recordings_days: 90 }, 'nothing stored from a refused form');
    const refused = await api(kefu.baseUrl, 'PUT', '/enterprise/retention-settings', token, { ...keepAll, moderation_days: 0 });
    assert.equal(refused.status, 422);
    assert.ok(refused.data.fields && refused.data.fields.moderation_days, JSON.stringify(refused.data));

    const shown = await section.innerText();
    assert.equal(latin(shown), null, `the retention section is all Chinese: ${shown}`);
    await section.scrollIntoViewIfNeeded();
    await section.screenshot({ path: join(artifacts, 'admin-retention.png') });

    // Removing an agent: asked first, naming them; Esc changes nothing.
    const erin = (await api(kefu.baseUrl, 'POST', '/auth/login', null, { login: 'erin', password: 'erin password 1' })).data.token;
    assert.equal((await api(kefu.baseUrl, 'GET', '/me', erin)).status, 200);
    const row = page.locator('#agents tr[data-login=erin]');
    await page.waitForSelector('#agents tr[data-login=erin][data-enrolled=true]');
    await row.locator('[data-action=remove-agent]').click();
    await page.waitForSelector('#confirm-dialog[open]');
    const removal = await dialog.innerText();
    assert.match(removal, /删除坐席：吴二 \(erin\)/);
    assert.match(removal, /登录将立即失效/);
    assert.match(removal, /人脸信息.*永久删除/);
    assert.match(removal, /录像和核验记录仍会保留/);
    assert.equal(latin(removal.replaceAll('(erin)', '')), null, `the dialog is all Chinese: ${removal}`);
    await page.screenshot({ path: join(artifacts, 'admin-remove-agent-confirm.png') });
    await page.keyboard.press('Escape');
    await page.waitForSelector('#confirm-dialog', { state: 'hidden' });
    assert.equal(await row.count(), 1, 'Esc keeps the agent');
    assert.equal((await api(kefu.baseUrl, 'GET', '/me', erin)).status, 200);

    await row.locator('[data-action=remove-agent]').click();
    await page.waitForSelector('#confirm-dialog[open]');
    await page.click('#confirm-ok');
    await row.waitFor({ state: 'detached' });
    await page.waitForSelector('#agents tr[data-login=fred]');
    assert.equal(await page.isVisible('#agents-error'), false);

    // The agent is gone: sign-in refused, the session over, the face reference deleted.
    const login = await api(kefu.baseUrl, 'POST', '/auth/login', null, { login: 'erin', password: 'erin password 1' });
    assert.equal(login.status, 401, JSON.stringify(login));
    assert.equal((await api(kefu.baseUrl, 'GET', '/me', erin)).status, 401, 'their session ended');
    const agents = await api(kefu.baseUrl, 'GET', '/agents', token);
    assert.deepEqual(agents.data.map((a) => a.login), ['fred']);
    const face = await api(kefu.baseUrl, 'GET', `/users/${erinId}/face-reference`, token);
    assert.ok(face.status === 404 || (face.status === 200 && face.data.enrolled === false), `the face reference is gone: ${JSON.stringify(face)}`);
    // Both changes are audited.
    const audit = await api(kefu.baseUrl, 'GET', '/audit', token);
    const actions = audit.data.map((e) => e.action);
    assert.ok(actions.includes('retention_settings_changed'), JSON.stringify(actions));
    assert.ok(audit.data.some((e) => e.action === 'agent_removed' && e.target_id === erinId), JSON.stringify(audit.data));
    assert.deepEqual(nativeDialogs, [], 'no native dialog');
  } finally {
    await browser.close();
    await kefu.stop();
  }
});
