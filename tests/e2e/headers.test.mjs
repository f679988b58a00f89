// The pages' content security policy in a real browser: every page loads without a
// violation (each browser test checks that too, on close), and an inline script
// injected into a page is refused, so the policy is in force, not just sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startKefu, launchBrowser } from './lib/kefu.mjs';

test('the pages load under their content security policy, which refuses inline script', async () => {
  const kefu = await startKefu();
  const browser = await launchBrowser();
  const { page, violations } = browser;
  try {
    for (const path of ['/workbench', '/admin', '/service/10000', '/invite/unknown-code', '/verify/unknown-token']) {
      const res = await page.goto(`${kefu.baseUrl}${path}`);
      assert.equal(res.status(), 200, path);
      const csp = res.headers()['content-security-policy'];
      assert.match(csp, /script-src 'self'/, path);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
      assert.match(csp, /frame-ancestors 'none'/, path);
      await page.waitForLoadState('load');
      await page.waitForTimeout(500); // the page's own first requests
      assert.deepEqual(violations, [], `${path} loads without a violation`);
    }
    // An attacker's inline script (as an injection would add) does not run.
    await page.goto(`${kefu.baseUrl}/workbench`);
    await page.addScriptTag({ content: 'window.injected = true;' }).catch(() => {});
    assert.equal(await page.evaluate(() => window.injected === true), false, 'the inline script did not run');
    assert.ok(violations.some((v) => /inline/i.test(v)), `the browser reported the refusal: ${violations}`);
    violations.length = 0;
  } finally {
    await browser.close();
    await kefu.stop();
  }
});
