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
    select.replaceChildren(new Option(KefuStrings.t('adm.all'), ''));
    $('r-agent').replaceChildren(new Option(KefuStrings.t('adm.all'), ''));
    for (const a of data) {
      const tr = document.createElement('tr');
      tr.dataset.login = a.login;
      tr.append(cell(a.login), cell(a.real_name), cell(a.id_number_masked), cell(KefuStrings.t(`adm.presence.${a.status}`)));
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
      $('r-agent').append(new Option(`${a.real_name} (${a.login})`, a.id));
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
        cell(v.id_number_masked), cell(KefuStrings.t(v.passed ? 'adm.passed' : 'adm.not_passed')), cell(when(v.passed_at)));
      body.append(tr);
    }
  }



  function recQuery() {
    const q = new URLSearchParams();
    if ($('r-agent').value) q.set('agent_id', $('r-agent').value);
    if ($('r-from').value) q.set('from', String(new Date(`${$('r-from').value}T00:00:00`).getTime()));
    if ($('r-to').value) q.set('to', String(new Date(`${$('r-to').value}T00:00:00`).getTime() + 86400000));
    if ($('r-kind').value) q.set('kind', $('r-kind').value);
    if ($('r-state').value) q.set('state', $('r-state').value);
    if (admin.customer) q.set('customer_id', admin.customer.id);
    return q.toString();
  }

  // The customer's trail: clicking a customer lists only their recordings.
  function filterCustomer(customer) {
    admin.customer = customer;
    const chip = $('r-customer');
    chip.hidden = !customer;
    chip.textContent = customer ? KefuStrings.t('adm.customer_filter', { name: customer.name }) : '';
    loadRecordings();
  }

  /** A button; `action` names it for scripts and tests (never its wording). */
  function button(text, onclick, action) {
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.action = action;
    b.textContent = text;
    b.onclick = onclick;
    return b;
  }

  async function loadRecordings() {
    const { status, data } = await api('GET', `/recordings?${recQuery()}`);
    const body = $('recordings').querySelector('tbody');
    body.replaceChildren();
    if (status !== 200) return;
    for (const r of data) {
      const tr = document.createElement('tr');
      tr.dataset.id = r.id;
      const state = r.state === 'failed'
        ? KefuStrings.t(KefuStrings.has(`adm.failure.${r.failure_kind}`) ? `adm.failure.${r.failure_kind}` : 'adm.rec.failed')
        : KefuStrings.t(`adm.rec.${r.state}`);
      const actions = document.createElement('td');
      if (r.state === 'ready') {
        actions.append(button(KefuStrings.t('wb.play'), () => play(r), 'play'), button(KefuStrings.t('adm.download'), () => download(r), 'download'));
      } else if (r.retryable) {
        actions.append(button(KefuStrings.t('adm.retry'), async () => { await api('POST', `/recordings/${r.id}/retry`); loadRecordings(); }, 'retry'));
      }
      const who = cell('');
      if (r.customer_id) {
        const link = button(r.customer_name || r.customer_id.slice(0, 8), () => filterCustomer({ id: r.customer_id, name: r.customer_name || '' }), 'customer-trail');
        link.className = 'link customer-trail';
        who.append(link);
      }
      tr.append(cell(r.name), cell(r.agent_name || ''), who, cell(r.duration || ''), cell(state), actions);
      tr.querySelector('td:nth-child(5)').className = `state-${r.state}`;
      body.append(tr);
    }
  }

  async function play(r) {
    const { status, data } = await api('POST', `/recordings/${r.id}/play`);
    if (status !== 200) return;
    const player = $('player');
    player.hidden = false;
    player.src = data.url;
    player.play().catch(() => {});
  }

  async function download(r) {
    const { status, data } = await api('POST', `/recordings/${r.id}/download`);
    if (status !== 200) return;
    // The server names the file (Content-Disposition), in the enterprise's words.
    const a = document.createElement('a');
    a.href = data.url;
    a.download = r.name;
    a.click();
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
    $('status').textContent = KefuStrings.t('wb.signed_in');
    await loadAgents();
    await loadVerifications();
    await loadRecordings();
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
        $('login-error').textContent = KefuStrings.t('wb.wrong_login');
        return;
      }
      admin.token = (await res.json()).token;
      sessionStorage.setItem('kefu.admin', admin.token);
      await open();
      if ($('console').hidden) $('login-error').textContent = KefuStrings.t('adm.admins_only');
    };
    $('filters').onsubmit = (e) => {
      e.preventDefault();
      loadVerifications();
    };
    $('export').onclick = exportCsv;
    $('r-customer').onclick = () => filterCustomer(null);
    $('rec-filters').onsubmit = (e) => {
      e.preventDefault();
      loadRecordings();
    };
    window.adminConsole.loadRecordings = loadRecordings;
    if (admin.token) open();
  });
})();
