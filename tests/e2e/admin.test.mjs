// The admin console: grant the video service, read the verification dashboard.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startKefu, launchBrowser, artifacts, api, signIn } from './lib/kefu.mjs';

test('an admin grants the video service and reads masked verification records', async () => {
  const kefu = await startKefu();
  const browser = await launchBrowser();
  const page = browser.page;
  try {
    kefu.run('kefu', ['admin', 'create-user', '--enterprise', '10000', '--login', 'dave', '--role', 'agent',
      '--name', '周大', '--id-number-stdin', '--password-stdin'], '110101199003071234\ndave password 1\n');
    kefu.run('kefu-test-verify', ['dave', 'failed']);
    kefu.run('kefu-test-verify', ['dave', 'passed']);

    // Before the grant, the agent's workbench (here on a phone) offers no call buttons.
    const phone = await launchBrowser({ mobile: true });
    try {
      await signIn(phone.page, kefu.baseUrl, 'dave', 'dave password 1');
      assert.equal(await phone.page.isVisible('#video-call'), false, 'no call buttons without the service');
      assert.equal(await phone.page.isVisible('#no-service'), true);
      await phone.page.screenshot({ path: join(artifacts, 'workbench-phone-no-service.png') });
    } finally {
      await phone.close();
    }

    await page.goto(`${kefu.baseUrl}/admin`);
    await page.fill('#login', 'admin');
    await page.fill('#password', kefu.adminPassword);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#console:not([hidden])');

    const row = page.locator('#agents tr[data-login=dave]');
    await row.waitFor();
    assert.match(await row.textContent(), /110\*{11}1234/);
    assert.equal(await row.locator('.video-service').isChecked(), false, 'the service starts off');
    await row.locator('.video-service').check();
    const dave = await api(kefu.baseUrl, 'POST', '/auth/login', null, { login: 'dave', password: 'dave password 1' });
    await waitForGrant(kefu, dave.data.token);

    await page.waitForFunction(() => document.querySelectorAll('#verifications tbody tr').length === 2);
    const text = await page.textContent('#verifications');
    assert.match(text, /通过/);
    assert.match(text, /未通过/);
    assert.match(text, /110\*{11}1234/);
    assert.ok(!(await page.content()).includes('110101199003071234'), 'the clear ID number never reaches the page');
    await page.selectOption('#f-result', 'failed');
    await page.click('#filters button[type=submit]');
    await page.waitForFunction(() => document.querySelectorAll('#verifications tbody tr').length === 1);
    await page.screenshot({ path: join(artifacts, 'admin-console.png'), fullPage: true });
    // Each read of the records (the first view, then the filtered one) is audited.
    const token = (await api(kefu.baseUrl, 'POST', '/auth/login', null, { login: 'admin', password: kefu.adminPassword })).data.token;
    const audit = await api(kefu.baseUrl, 'GET', '/audit', token);
    const reads = audit.data.filter((e) => e.action === 'verifications_read');
    assert.ok(reads.length >= 2, `the console's reads are audited: ${JSON.stringify(audit.data)}`);
    assert.ok(reads.every((e) => e.actor_role === 'admin' && e.target_id === 'verification_records'));
  } finally {
    await browser.close();
    await kefu.stop();
  }
});

async function waitForGrant(kefu, token) {
  for (let i = 0; i < 40; i++) {
    const me = await api(kefu.baseUrl, 'GET', '/me', token);
    if (me.data.video_enabled) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the grant did not reach the server');
}
