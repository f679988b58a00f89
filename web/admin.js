// Admin console: grant the video service per agent, and the operations dashboard of
// face-verification records (filters, CSV export). ID numbers arrive masked.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const admin = (window.adminConsole = { token: sessionStorage.getItem('kefu.admin') });

  async function api(method, path, body) {
    const res = await fetch(`/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${admin.token}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, data: res.headers.get('content-type')?.includes('json') ? await res.json() : await res.text() };
  }

  const cell = (text) => {
    const td = document.createElement('td');
    td.textContent = text == null ? '' : String(text);
    return td;
  };
  const when = (ms) => (ms ? new Date(ms).toLocaleString('zh-CN', { hour12: false }) : '');

  async function loadAgents() {
    const { data } = await api('GET', '/agents');
    const body = $('agents').querySelector('tbody');
    body.replaceChildren();
    const select = $('f-agent');
    select.replaceChildren(new Option('全部 all', ''));
    for (const a of data) {
      const tr = document.createElement('tr');
      tr.dataset.login = a.login;
      tr.append(cell(a.login), cell(a.real_name), cell(a.id_number_masked), cell(a.status));
      const td = document.createElement('td');
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.checked = a.video_enabled;
      box.className = 'video-service';
      box.onchange = async () => {
        const r = await api('PUT', `/agents/${a.id}/video-service`, { enabled: box.checked });
        if (r.status !== 200) box.checked = !box.checked;
      };
      td.append(box);
      tr.append(td);
      body.append(tr);
      select.append(new Option(`${a.real_name} (${a.login})`, a.id));
    }
  }

  function query() {
    const q = new URLSearchParams();
    if ($('f-agent').value) q.set('agent_id', $('f-agent').value);
    if ($('f-from').value) q.set('from', String(new Date($('f-from').value + 'T00:00:00').getTime()));
    if ($('f-to').value) q.set('to', String(new Date($('f-to').value + 'T00:00:00').getTime() + 86400000));
    if ($('f-result').value) q.set('result', $('f-result').value);
    return q.toString();
  }

  async function loadVerifications() {
    const { status, data } = await api('GET', `/verifications?${query()}`);
    const body = $('verifications').querySelector('tbody');
    body.replaceChildren();
    if (status !== 200) return;
    for (const v of data) {
      const tr = document.createElement('tr');
      tr.append(cell(when(v.checked_at)), cell(v.main_account), cell(v.agent_id.slice(0, 8)), cell(v.agent_name),
        cell(v.id_number_masked), cell(v.passed ? '通过' : '未通过'), cell(when(v.passed_at)));
      body.append(tr);
    }
  }

  async function exportCsv() {
    const res = await fetch(`/api/v1/verifications.csv?${query()}`, { headers: { authorization: `Bearer ${admin.token}` } });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(await res.blob());
    a.download = 'verifications.csv';
    a.click();
  }

  async function open() {
    const me = await api('GET', '/me');
    if (me.status !== 200 || me.data.role !== 'admin') {
      sessionStorage.removeItem('kefu.admin');
      return;
    }
    $('who').textContent = `${me.data.real_name} (${me.data.login})`;
    $('login-panel').hidden = true;
    $('console').hidden = false;
    $('status').textContent = '已登录 Signed in';
    await loadAgents();
    await loadVerifications();
  }

  window.addEventListener('DOMContentLoaded', () => {
    $('login-form').onsubmit = async (e) => {
      e.preventDefault();
      const res = await fetch('/api/v1/auth/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ login: $('login').value, password: $('password').value }),
      });
      if (res.status !== 200) {
        $('login-error').textContent = '账号或密码错误 · Wrong login or password';
        return;
      }
      admin.token = (await res.json()).token;
      sessionStorage.setItem('kefu.admin', admin.token);
      await open();
      if ($('console').hidden) $('login-error').textContent = '需要管理员账号 · Admins only';
    };
    $('filters').onsubmit = (e) => {
      e.preventDefault();
      loadVerifications();
    };
    $('export').onclick = exportCsv;
    if (admin.token) open();
  });
})();
