// Admin console: grant the video service per agent, enrol an agent's face reference
// (photos or the camera), clear a verification lock and remove an agent, and the
// operations dashboard of face-verification records (filters, CSV export, failure
// reasons), content moderation (the enterprise's settings, and the incidents with their
// evidence and review) and data retention. ID numbers arrive masked; enrolment photos
// stay in this page only until they are sent. What cannot be undone (removing an agent,
// a shorter retention) is confirmed first in the page's own dialog.
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
    $('i-agent').replaceChildren(new Option(KefuStrings.t('adm.all'), ''));
    for (const a of data) {
      const tr = document.createElement('tr');
      tr.dataset.login = a.login;
      tr.dataset.id = a.id;
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
      const face = cell('');
      face.className = 'face-state';
      const locked = cell('');
      locked.className = 'lock-state';
      const actions = document.createElement('td');
      actions.className = 'face-actions';
      const remove = button(KefuStrings.t('adm.remove_agent'), () => removeAgent(a), 'remove-agent');
      remove.className = 'danger';
      actions.append(
        button(KefuStrings.t('adm.enroll'), () => openEnroll(a), 'enroll'),
        button(KefuStrings.t('adm.clear_lock'), () => clearLock(a, tr), 'clear-lock'),
        remove,
      );
      tr.append(face, locked, actions);
      showFace(tr, null);
      body.append(tr);
      select.append(new Option(`${a.real_name} (${a.login})`, a.id));
      $('r-agent').append(new Option(`${a.real_name} (${a.login})`, a.id));
      $('i-agent').append(new Option(`${a.real_name} (${a.login})`, a.id));
    }
    // Whether each agent has a face reference and is locked out (one request each).
    await Promise.all(data.map(async (a) => {
      const r = await api('GET', `/users/${a.id}/face-reference`);
      const tr = body.querySelector(`tr[data-id="${a.id}"]`);
      if (r.status === 200 && tr) showFace(tr, r.data);
    }));
  }

  /** An agent row's face reference and lock (`view` null: not known yet). */
  function showFace(tr, view) {
    const face = tr.querySelector('.face-state');
    const lock = tr.querySelector('.lock-state');
    if (!view) {
      delete tr.dataset.enrolled;
      delete tr.dataset.locked;
      tr.querySelector('[data-action=clear-lock]').hidden = true;
      return;
    }
    tr.dataset.enrolled = String(view.enrolled);
    tr.dataset.locked = String(view.verification_locked);
    face.textContent = KefuStrings.t(view.enrolled ? 'adm.face.enrolled' : 'adm.face.not_enrolled');
    face.dataset.kind = view.enrolled ? 'ok' : 'warn';
    lock.textContent = KefuStrings.t(view.verification_locked ? 'adm.lock.locked' : 'adm.lock.unlocked');
    lock.dataset.kind = view.verification_locked ? 'warn' : 'ok';
    tr.querySelector('[data-action=clear-lock]').hidden = !view.verification_locked;
  }

  /** Asks before what cannot be undone: resolves true when the person confirmed
   *  (Esc and 取消 are a no). `items`: lines listed under the text. */
  function confirmDialog({ title, text, items = [], ok }) {
    const dialog = $('confirm-dialog');
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-items').replaceChildren(...items.map((line) => {
      const li = document.createElement('li');
      li.textContent = line;
      return li;
    }));
    $('confirm-items').hidden = items.length === 0;
    $('confirm-ok').textContent = ok;
    dialog.returnValue = '';
    if (!dialog.open) dialog.showModal();
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    });
  }

  /** The agents table's error line (`text` null clears it). */
  function agentsError(text) {
    $('agents-error').hidden = !text;
    $('agents-error').textContent = text || '';
  }

  // Removing an agent: their sign-in ends and their face reference goes; their calls,
  // recordings and records stay under the enterprise's retention.
  async function removeAgent(a) {
    const name = `${a.real_name} (${a.login})`;
    const confirmed = await confirmDialog({
      title: KefuStrings.t('adm.remove_agent.title', { name }),
      text: KefuStrings.t('adm.remove_agent.text', { name }),
      ok: KefuStrings.t('adm.remove_agent.confirm'),
    });
    if (!confirmed) return;
    const r = await api('DELETE', `/agents/${a.id}`);
    agentsError(r.status === 204 ? null : KefuStrings.errorText(r.data, 'adm.remove_agent.failed'));
    // Gone (or already gone: 404): the list says so.
    if (r.status === 204 || r.status === 404) await loadAgents();
  }

  async function refreshFace(a) {
    const tr = $('agents').querySelector(`tr[data-id="${a.id}"]`);
    const r = await api('GET', `/users/${a.id}/face-reference`);
    if (r.status === 200 && tr) showFace(tr, r.data);
  }

  async function clearLock(a, tr) {
    const r = await api('POST', `/users/${a.id}/verification-lock/clear`);
    if (r.status === 200) showFace(tr, r.data);
    else await refreshFace(a);
  }

  // Enrolment: one to three photos from files or the camera, checked by the server's
  // face engine; a refused photo is named by its number and the reason's code.
  const MAX_PHOTOS = 3;
  const enroll = { agent: null, photos: [], camera: null };

  function openEnroll(a) {
    enroll.agent = a;
    enroll.photos = [];
    $('enroll-title').textContent = KefuStrings.t('adm.enroll_title', { name: `${a.real_name} (${a.login})` });
    $('enroll-dialog').dataset.agent = a.login;
    enrollMessage(null);
    $('enroll-done').hidden = true;
    renderPhotos();
    if (!$('enroll-dialog').open) $('enroll-dialog').showModal();
  }

  function closeEnroll() {
    stopEnrollCamera();
    // Nothing of the photos stays in the page.
    enroll.photos = [];
    enroll.agent = null;
    renderPhotos();
    if ($('enroll-dialog').open) $('enroll-dialog').close();
  }

  /** The error line: `key`'s text, or a server error (`body`) about photo `index`. */
  function enrollMessage(key, body) {
    const el = $('enroll-error');
    delete el.dataset.error;
    delete el.dataset.index;
    if (!key && !body) {
      el.hidden = true;
      el.textContent = '';
      return;
    }
    if (body) {
      const index = body.detail && Number.isInteger(body.detail.index) ? body.detail.index : null;
      const text = KefuStrings.errorText(body);
      el.dataset.error = body.error || 'error';
      if (index !== null) {
        el.dataset.index = String(index);
        el.textContent = KefuStrings.t('adm.enroll_photo_error', { n: index + 1, text });
      } else {
        el.textContent = text;
      }
    } else {
      el.dataset.error = key.split('.').pop();
      el.textContent = KefuStrings.t(key);
    }
    el.hidden = false;
  }

  function renderPhotos() {
    const list = $('enroll-photos');
    list.replaceChildren();
    enroll.photos.forEach((p, i) => {
      const li = document.createElement('li');
      if (p.error) li.dataset.error = p.error;
      const img = document.createElement('img');
      img.src = p.dataUrl;
      img.alt = KefuStrings.t('adm.enroll_photo', { n: i + 1 });
      const label = document.createElement('span');
      label.textContent = KefuStrings.t('adm.enroll_photo', { n: i + 1 });
      li.append(img, label, button(KefuStrings.t('adm.enroll_remove'), () => {
        enroll.photos.splice(i, 1);
        for (const q of enroll.photos) delete q.error;
        enrollMessage(null);
        renderPhotos();
      }, 'remove-photo'));
      list.append(li);
    });
    $('enroll-submit').disabled = enroll.photos.length === 0;
  }

  function addPhoto(dataUrl) {
    if (enroll.photos.length >= MAX_PHOTOS) {
      enrollMessage('adm.enroll_too_many');
      return false;
    }
    for (const q of enroll.photos) delete q.error;
    enroll.photos.push({ dataUrl });
    $('enroll-done').hidden = true;
    return true;
  }

  async function photosChosen(e) {
    const input = e.target;
    enrollMessage(null);
    for (const file of Array.from(input.files || [])) {
      const dataUrl = await new Promise((resolve) => {
        const reader = new FileReader();
        reader.onload = () => resolve(reader.result);
        reader.onerror = () => resolve(null);
        reader.readAsDataURL(file);
      });
      if (dataUrl && !addPhoto(dataUrl)) break;
    }
    input.value = '';
    renderPhotos();
  }

  async function openEnrollCamera() {
    if (enroll.camera) return;
    try {
      enroll.camera = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    } catch (_) {
      enrollMessage('verify.camera_unavailable');
      return;
    }
    $('enroll-video').srcObject = enroll.camera;
    $('enroll-video').play().catch(() => {});
    $('enroll-capture').hidden = false;
  }

  function stopEnrollCamera() {
    if (enroll.camera) for (const track of enroll.camera.getTracks()) track.stop();
    enroll.camera = null;
    $('enroll-video').srcObject = null;
    $('enroll-capture').hidden = true;
  }

  function takePhoto() {
    const video = $('enroll-video');
    if (!enroll.camera || !video.videoWidth) return;
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    // The picture as the camera sees it (only the preview is mirrored).
    canvas.getContext('2d').drawImage(video, 0, 0);
    enrollMessage(null);
    addPhoto(canvas.toDataURL('image/jpeg', 0.92));
    if (enroll.photos.length >= MAX_PHOTOS) stopEnrollCamera();
    renderPhotos();
  }

  async function submitPhotos() {
    const agent = enroll.agent;
    if (!agent) return;
    if (!enroll.photos.length) {
      enrollMessage('adm.enroll_none');
      return;
    }
    enrollMessage(null);
    $('enroll-done').hidden = true;
    $('enroll-submit').disabled = true;
    $('enroll-dialog').dataset.busy = 'true';
    const r = await api('PUT', `/users/${agent.id}/face-reference`, { photos: enroll.photos.map((p) => p.dataUrl) });
    delete $('enroll-dialog').dataset.busy;
    $('enroll-submit').disabled = false;
    if (enroll.agent !== agent) return;
    if (r.status === 200) {
      stopEnrollCamera();
      enroll.photos = [];
      renderPhotos();
      $('enroll-done').textContent = KefuStrings.t('adm.enroll_done', { count: r.data.photo_count });
      $('enroll-done').hidden = false;
      const tr = $('agents').querySelector(`tr[data-id="${agent.id}"]`);
      if (tr) showFace(tr, r.data);
      return;
    }
    const body = r.data && typeof r.data === 'object' ? r.data : { error: r.status === 413 ? 'payload_too_large' : 'generic' };
    const index = body.detail && body.detail.index;
    if (Number.isInteger(index) && enroll.photos[index]) enroll.photos[index].error = body.error;
    renderPhotos();
    enrollMessage(null, body);
  }

  async function loadSettings() {
    const r = await api('GET', '/enterprise/verification-settings');
    if (r.status === 200) $('keep-photos').checked = r.data.keep_enrollment_photos;
  }

  async function saveSettings() {
    const box = $('keep-photos');
    const r = await api('PUT', '/enterprise/verification-settings', { keep_enrollment_photos: box.checked });
    $('settings-error').hidden = r.status === 200;
    if (r.status !== 200) {
      box.checked = !box.checked;
      $('settings-error').textContent = KefuStrings.errorText(r.data, 'adm.settings_not_saved');
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
      tr.dataset.id = v.id;
      tr.dataset.passed = String(v.passed);
      const reason = cell(v.passed ? '' : failureText(v));
      reason.className = 'failure-reason';
      if (!v.passed && v.failure_reason) reason.dataset.reason = v.failure_reason;
      if (!v.passed && v.failure_detail) reason.dataset.detail = v.failure_detail;
      const channel = cell(v.channel && KefuStrings.has(`adm.channel.${v.channel}`) ? KefuStrings.t(`adm.channel.${v.channel}`) : '');
      tr.append(cell(when(v.checked_at)), cell(v.main_account), cell(v.agent_id.slice(0, 8)), cell(v.agent_name),
        cell(v.id_number_masked), cell(KefuStrings.t(v.passed ? 'adm.passed' : 'adm.not_passed')), reason, channel,
        cell(when(v.passed_at)));
      body.append(tr);
    }
  }



  /** A failed check's reason, and the engine's finer reason after it. */
  function failureText(v) {
    if (!v.failure_reason) return '';
    const detail = v.failure_detail !== v.failure_reason ? KefuVerify.detailText(v.failure_detail) : '';
    const reason = KefuVerify.reasonText(v.failure_reason);
    return detail ? `${reason}（${detail}）` : reason;
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
      const stateCell = tr.querySelector('td:nth-child(5)');
      stateCell.className = `state-${r.state}`;
      // Moderation acted in this call: say so next to its state (incidents below).
      if (r.moderated) {
        const tag = document.createElement('span');
        tag.className = 'moderated-tag';
        tag.textContent = KefuStrings.t('adm.rec.moderated');
        stateCell.append(' ', tag);
        tr.dataset.moderated = '1';
      }
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

  // Content moderation: the enterprise's settings. The form is sent whole, numbers as
  // numbers; the server judges the ranges (422, fields named) and the page marks them.
  const moderationInputs = () => Array.from($('moderation-form').querySelectorAll('[data-field]'));

  function showModerationSettings(settings) {
    for (const input of moderationInputs()) {
      const value = settings[input.dataset.field];
      if (input.type === 'checkbox') input.checked = Boolean(value);
      // The threshold is an f32 on the server: 0.8 arrives as 0.800000011920929.
      else input.value = typeof value === 'number' ? String(Number(value.toPrecision(6))) : '';
      input.removeAttribute('aria-invalid');
    }
    admin.moderation = settings;
    steadyMin();
  }

  // The steady interval is never shorter than the warm-up's.
  function steadyMin() {
    $('m-steady-interval').min = $('m-warmup-interval').value || '500';
  }

  /** The settings form's message: `text` as an error, or the saved notice (`saved`). */
  function moderationMessage(text, saved) {
    $('moderation-error').hidden = !text;
    $('moderation-error').textContent = text || '';
    $('moderation-saved').hidden = !saved;
  }

  /** An error text naming the fields at fault by their labels. */
  function fieldsText(text, fields) {
    const labels = [];
    for (const input of moderationInputs()) {
      if (!fields.includes(input.dataset.field)) continue;
      input.setAttribute('aria-invalid', 'true');
      labels.push(KefuStrings.t(`adm.moderation.${input.dataset.field}`));
    }
    return labels.length ? KefuStrings.t('adm.moderation.check_fields', { text, fields: labels.join(KefuStrings.t('list.separator')) }) : text;
  }

  async function loadModerationSettings() {
    const r = await api('GET', '/enterprise/moderation-settings');
    // Nothing is saved over settings this page has not read.
    $('m-save').disabled = r.status !== 200;
    if (r.status === 200) {
      showModerationSettings(r.data);
      moderationMessage(null);
    } else {
      moderationMessage(KefuStrings.errorText(r.data, 'adm.moderation.not_loaded'));
    }
  }

  async function saveModerationSettings(e) {
    e.preventDefault();
    moderationMessage(null);
    const settings = {};
    const invalid = [];
    for (const input of moderationInputs()) {
      input.removeAttribute('aria-invalid');
      if (input.type === 'checkbox') {
        settings[input.dataset.field] = input.checked;
        continue;
      }
      settings[input.dataset.field] = input.valueAsNumber;
      if (!input.checkValidity()) invalid.push(input.dataset.field);
    }
    if (invalid.length) {
      moderationMessage(fieldsText(KefuStrings.t('error.validation'), invalid));
      return;
    }
    // Turning screening off is said out loud, once, before it happens.
    if (admin.moderation && admin.moderation.enabled && !settings.enabled
        && !window.confirm(KefuStrings.t('adm.moderation.confirm_off'))) {
      $('m-enabled').checked = true;
      return;
    }
    $('m-save').disabled = true;
    const r = await api('PUT', '/enterprise/moderation-settings', settings);
    $('m-save').disabled = false;
    if (r.status >= 200 && r.status < 300) {
      showModerationSettings(r.data && typeof r.data === 'object' ? r.data : settings);
      moderationMessage(null, true);
      return;
    }
    const text = KefuStrings.errorText(r.data, 'adm.moderation.not_saved');
    const fields = r.data && typeof r.data === 'object' && r.data.fields ? Object.keys(r.data.fields) : [];
    moderationMessage(fieldsText(text, fields));
  }

  // Data retention: how long the enterprise keeps each kind of personal data, in whole
  // days; an empty field keeps it until deleted by hand (null). The page makes sure it
  // sends whole days, the server judges the range (422, the field named). A retention
  // that gets shorter, or starts at all, is confirmed first: the next daily cleanup
  // deletes what is older, for good.
  const retentionInputs = () => Array.from($('retention-form').querySelectorAll('[data-field]'));

  function showRetentionSettings(settings) {
    for (const input of retentionInputs()) {
      const days = settings[input.dataset.field];
      input.value = Number.isInteger(days) ? String(days) : '';
      input.removeAttribute('aria-invalid');
    }
    admin.retention = settings;
  }

  /** The retention form's message: `text` as an error, or the saved notice (`saved`). */
  function retentionMessage(text, saved) {
    $('retention-error').hidden = !text;
    $('retention-error').textContent = text || '';
    $('retention-saved').hidden = !saved;
  }

  /** The range error naming the fields at fault by their labels (marked invalid). */
  function retentionInvalid(fields, body) {
    const labels = [];
    for (const input of retentionInputs()) {
      if (!fields.includes(input.dataset.field)) continue;
      input.setAttribute('aria-invalid', 'true');
      labels.push(KefuStrings.t(`adm.retention.${input.dataset.field}`));
    }
    return labels.length
      ? KefuStrings.t('adm.retention.invalid', { fields: labels.join(KefuStrings.t('list.separator')) })
      : KefuStrings.errorText(body, 'adm.retention.not_saved');
  }

  /** A retention as people read it: "30 天", or 永久保留 (null). */
  const daysText = (days) => (days == null ? KefuStrings.t('adm.retention.keep') : KefuStrings.t('adm.retention.days', { days }));

  async function loadRetentionSettings() {
    const r = await api('GET', '/enterprise/retention-settings');
    // Nothing is saved over settings this page has not read.
    $('ret-save').disabled = r.status !== 200;
    if (r.status === 200) {
      showRetentionSettings(r.data);
      retentionMessage(null);
    } else {
      retentionMessage(KefuStrings.errorText(r.data, 'adm.retention.not_loaded'));
    }
  }

  async function saveRetentionSettings(e) {
    e.preventDefault();
    retentionMessage(null);
    const settings = {};
    const invalid = [];
    for (const input of retentionInputs()) {
      const field = input.dataset.field;
      input.removeAttribute('aria-invalid');
      if (input.value.trim() === '' && !input.validity.badInput) {
        settings[field] = null;
        continue;
      }
      // Whole days only (not 1.5, not -3): what is not a count of days is not sent.
      const days = input.valueAsNumber;
      if (!Number.isSafeInteger(days) || days < 0) invalid.push(field);
      settings[field] = days;
    }
    if (invalid.length) {
      retentionMessage(retentionInvalid(invalid));
      return;
    }
    const before = admin.retention || {};
    const shorter = retentionInputs()
      .map((input) => input.dataset.field)
      .filter((f) => settings[f] >= 1 && (before[f] == null || settings[f] < before[f]));
    $('ret-save').disabled = true;
    try {
      if (shorter.length && !(await confirmDialog({
        title: KefuStrings.t('adm.retention.confirm.title'),
        text: KefuStrings.t('adm.retention.confirm.text'),
        items: shorter.map((f) => KefuStrings.t('adm.retention.confirm.item', {
          kind: KefuStrings.t(`adm.retention.${f}`), from: daysText(before[f]), to: daysText(settings[f]),
        })),
        ok: KefuStrings.t('adm.retention.confirm.ok'),
      }))) return;
      const r = await api('PUT', '/enterprise/retention-settings', settings);
      if (r.status === 200) {
        showRetentionSettings(r.data && typeof r.data === 'object' ? r.data : settings);
        retentionMessage(null, true);
        return;
      }
      const body = r.data && typeof r.data === 'object' ? r.data : null;
      retentionMessage(body && body.error === 'validation' && body.fields
        ? retentionInvalid(Object.keys(body.fields), body)
        : KefuStrings.errorText(body, 'adm.retention.not_saved'));
    } finally {
      $('ret-save').disabled = false;
    }
  }

  // Content moderation: the incidents. Evidence pictures need the session token, so
  // they come as blobs; the clear picture only on the reveal button (the server audits it).
  function incidentQuery() {
    const q = new URLSearchParams();
    if ($('i-from').value) q.set('from', String(new Date(`${$('i-from').value}T00:00:00`).getTime()));
    if ($('i-to').value) q.set('to', String(new Date(`${$('i-to').value}T00:00:00`).getTime() + 86400000));
    if ($('i-agent').value) q.set('agent', $('i-agent').value);
    if ($('i-result').value) q.set('result', $('i-result').value);
    return q.toString();
  }

  /** An image the API sends (JPEG), as an object URL; `url` null when it failed. */
  async function apiImage(method, path) {
    const res = await fetch(`/api/v1${path}`, { method, headers: { authorization: `Bearer ${admin.token}` } });
    if (res.status !== 200) {
      const data = res.headers.get('content-type')?.includes('json') ? await res.json() : null;
      return { status: res.status, data, url: null };
    }
    return { status: res.status, url: URL.createObjectURL(await res.blob()) };
  }

  // The <img> keeps its decoded picture: the URL can go once it has loaded.
  function showImage(img, url) {
    img.onload = img.onerror = () => URL.revokeObjectURL(url);
    img.src = url;
  }

  /** A row's error line (`text` null clears it). */
  function incidentError(tr, text) {
    const el = tr.querySelector('.incident-error');
    el.hidden = !text;
    el.textContent = text || '';
  }

  function evidenceCell(i) {
    const td = cell('');
    td.className = 'evidence';
    if (!i.evidence) return td;
    const img = document.createElement('img');
    img.className = 'evidence-mosaic';
    img.alt = KefuStrings.t('adm.moderation.evidence_alt');
    const reveal = button(KefuStrings.t('adm.moderation.reveal'), async () => {
      const tr = td.closest('tr');
      reveal.disabled = true;
      const r = await apiImage('POST', `/moderation/incidents/${i.id}/reveal`);
      if (!r.url) {
        reveal.disabled = false;
        incidentError(tr, KefuStrings.errorText(r.data, 'adm.moderation.reveal_failed'));
        return;
      }
      incidentError(tr, null);
      showImage(img, r.url);
      img.dataset.revealed = '1';
      img.alt = KefuStrings.t('adm.moderation.evidence_revealed_alt');
      reveal.hidden = true;
    }, 'reveal');
    reveal.className = 'reveal';
    td.append(img, reveal);
    apiImage('GET', `/moderation/incidents/${i.id}/mosaic`).then((r) => {
      // Revealed meanwhile: the clear picture stays.
      if (img.dataset.revealed) {
        if (r.url) URL.revokeObjectURL(r.url);
      } else if (r.url) {
        showImage(img, r.url);
      } else if (td.closest('tr')) {
        incidentError(td.closest('tr'), KefuStrings.errorText(r.data, 'adm.moderation.evidence_failed'));
      }
    });
    return td;
  }

  /** One incident's row; `evidence`, the row's evidence cell already shown, is kept
   *  (a review does not fetch the picture again, nor hide a revealed one). */
  function incidentRow(i, evidence) {
    const tr = document.createElement('tr');
    tr.dataset.incident = i.id;
    tr.dataset.party = i.party;
    tr.dataset.action = i.action;
    tr.dataset.review = i.review;
    const scores = (i.scores || []).filter(Number.isFinite);
    const state = cell(KefuStrings.t(`adm.moderation.review.${i.review}`));
    state.className = 'review-state';
    state.dataset.review = i.review;
    if (i.reviewed_at) state.title = when(i.reviewed_at);
    const note = cell(i.review_note || '');
    note.className = 'review-note';

    const actions = cell('');
    actions.className = 'review-actions';
    const decision = document.createElement('select');
    decision.className = 'decision';
    decision.setAttribute('aria-label', KefuStrings.t('adm.moderation.decision'));
    for (const d of ['confirmed', 'dismissed']) decision.append(new Option(KefuStrings.t(`adm.moderation.decision.${d}`), d));
    if (i.review === 'dismissed') decision.value = 'dismissed';
    const input = document.createElement('input');
    input.className = 'note';
    input.maxLength = 500;
    input.value = i.review_note || '';
    input.placeholder = KefuStrings.t('adm.moderation.note');
    input.setAttribute('aria-label', KefuStrings.t('adm.moderation.note'));
    const submit = button(KefuStrings.t('adm.moderation.submit_review'), () => review(i, tr), 'review');
    submit.className = 'review';
    const error = document.createElement('span');
    error.className = 'error incident-error';
    error.setAttribute('role', 'alert');
    error.hidden = true;
    actions.append(decision, input, submit, error);

    tr.append(cell(when(i.created_at)), cell(i.agent_name || ''), cell(KefuStrings.t(`adm.moderation.party.${i.party}`)),
      cell(KefuStrings.t(`adm.moderation.action.${i.action}`)), cell(scores.length ? Math.max(...scores).toFixed(2) : ''),
      state, note, evidence || evidenceCell(i), actions);
    return tr;
  }

  async function review(i, tr) {
    const submit = tr.querySelector('button.review');
    submit.disabled = true;
    const r = await api('POST', `/moderation/incidents/${i.id}/review`, {
      decision: tr.querySelector('select.decision').value,
      note: tr.querySelector('input.note').value.trim(),
    });
    submit.disabled = false;
    if (r.status !== 200) {
      incidentError(tr, KefuStrings.errorText(r.data, 'adm.moderation.review_failed'));
      return;
    }
    if (tr.isConnected) tr.replaceWith(incidentRow(r.data, tr.querySelector('td.evidence')));
  }

  async function loadIncidents() {
    const { status, data } = await api('GET', `/moderation/incidents?${incidentQuery()}`);
    const body = $('incidents').querySelector('tbody');
    body.replaceChildren();
    $('incidents-error').hidden = status === 200;
    $('incidents-error').textContent = status === 200 ? '' : KefuStrings.errorText(data, 'adm.moderation.incidents_not_loaded');
    $('incidents-none').hidden = status !== 200 || data.length > 0;
    if (status !== 200) return;
    for (const i of data) body.append(incidentRow(i));
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
    await loadSettings();
    await loadVerifications();
    await loadModerationSettings();
    await loadIncidents();
    await loadRecordings();
    await loadRetentionSettings();
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
    $('keep-photos').onchange = saveSettings;
    $('enroll-files').onchange = photosChosen;
    $('enroll-camera').onclick = openEnrollCamera;
    $('enroll-shoot').onclick = takePhoto;
    $('enroll-submit').onclick = submitPhotos;
    $('enroll-close').onclick = closeEnroll;
    // Esc closes it too: the camera and the photos go with it.
    $('enroll-dialog').addEventListener('close', closeEnroll);
    window.adminConsole.loadAgents = loadAgents;
    window.adminConsole.loadVerifications = loadVerifications;
    $('r-customer').onclick = () => filterCustomer(null);
    $('rec-filters').onsubmit = (e) => {
      e.preventDefault();
      loadRecordings();
    };
    window.adminConsole.loadRecordings = loadRecordings;
    $('moderation-form').onsubmit = saveModerationSettings;
    // A changed form is no longer the saved one.
    $('moderation-form').oninput = () => {
      $('moderation-saved').hidden = true;
      steadyMin();
    };
    $('incident-filters').onsubmit = (e) => {
      e.preventDefault();
      loadIncidents();
    };
    window.adminConsole.loadModerationSettings = loadModerationSettings;
    $('retention-form').onsubmit = saveRetentionSettings;
    $('retention-form').oninput = () => {
      $('retention-saved').hidden = true;
    };
    $('confirm-ok').onclick = () => $('confirm-dialog').close('ok');
    $('confirm-cancel').onclick = () => $('confirm-dialog').close('cancel');
    window.adminConsole.loadRetentionSettings = loadRetentionSettings;
    window.adminConsole.loadIncidents = loadIncidents;
    if (admin.token) open();
  });
})();
