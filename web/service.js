// Customer H5 service page: consent, ask for a video or voice call, wait in the queue,
// then the call (camera off at first).
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const mainAccount = location.pathname.split('/').pop();
  const page = (window.servicePage = { request: null, cameraOn: false });

  window.addEventListener('DOMContentLoaded', async () => {
    const res = await fetch(`/api/v1/service/${encodeURIComponent(mainAccount)}`);
    if (res.status !== 200) {
      $('consent-error').textContent = KefuStrings.t('service.unknown');
      return;
    }
    const info = await res.json();
    $('title').textContent = KefuStrings.t('service.title_of', { name: info.enterprise_name });
    $('agree').onchange = (e) => {
      $('video-request').disabled = !e.target.checked;
      $('voice-request').disabled = !e.target.checked;
    };
    $('video-request').onclick = () => ask('video');
    $('voice-request').onclick = () => ask('voice');
  });

  async function ask(kind) {
    const res = await fetch(`/api/v1/service/${encodeURIComponent(mainAccount)}/requests`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ display_name: $('display-name').value, consent: $('agree').checked, kind }),
    });
    const body = await res.json().catch(() => ({}));
    if (res.status !== 201) {
      $('consent-error').textContent = KefuStrings.errorText(body, 'service.cannot_connect');
      return;
    }
    page.request = body;
    $('consent').hidden = true;
    $('waiting').hidden = false;
    $('cancel-request').onclick = cancel;
    watch();
  }

  // The request's state and queue position come over the event channel (/ws/events)
  // as they change; a dropped channel comes back after a second with a fresh snapshot.
  function watch() {
    const r = page.request;
    if (!r || page.joined) return;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/ws/events`);
    page.events = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'subscribe', room_token: r.room_token }));
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.type === 'request') show(msg);
      if (msg.type === 'error') {
        // The request cannot be followed (gone, or its token expired): say so, stop.
        page.over = true;
        $('waiting-title').textContent = KefuStrings.t('service.unavailable');
      }
    };
    ws.onclose = () => {
      if (page.events === ws && page.request && !page.over && !page.joined) setTimeout(watch, 1000);
    };
  }

  function show(s) {
    if (!page.request || page.joined || page.over) return;
    page.request.state = s.state;
    page.position = s.position;
    $('position').textContent = Math.max(0, s.position - 1);
    if (s.state === 'connecting' || s.state === 'connected') {
      page.joined = true;
      page.events.close();
      join();
    } else if (['cancelled', 'rejected', 'timed_out', 'failed', 'ended'].includes(s.state)) {
      page.over = true;
      page.events.close();
      $('waiting-title').textContent = KefuStrings.t('service.unavailable');
      $('waiting').dataset.outcome = s.state;
    }
  }

  async function cancel() {
    const r = page.request;
    const res = await fetch(`/api/v1/service/requests/${r.call_id}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${r.room_token}` } });
    // Refused (an agent answered at that moment): the call goes on, keep following it.
    if (res.status !== 200) return;
    page.request = null;
    page.over = true;
    if (page.events) page.events.close();
    $('waiting-title').textContent = KefuStrings.t('service.cancelled');
  }

  function join() {
    const r = page.request;
    $('waiting').hidden = true;
    $('call').hidden = false;
    $('controls').hidden = false;
    $('camera').hidden = r.kind !== 'video';
    $('camera').onclick = async () => {
      page.cameraOn = await KefuCall.setCamera(!page.cameraOn);
      $('camera').textContent = KefuStrings.t(page.cameraOn ? 'camera.off' : 'camera.on');
    };
    $('hang-up').onclick = () => KefuCall.hangUp();
    KefuCall.join({ token: r.room_token, kind: r.kind, cameraOn: false });
  }
})();
