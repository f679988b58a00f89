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
      $('consent-error').textContent = '找不到该客服 · Unknown service';
      return;
    }
    const info = await res.json();
    $('title').textContent = `${info.enterprise_name} 在线客服`;
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
      $('consent-error').textContent = body.message || '暂时无法接通 · Cannot connect now';
      return;
    }
    page.request = body;
    $('consent').hidden = true;
    $('waiting').hidden = false;
    $('cancel-request').onclick = cancel;
    watch();
  }

  async function status() {
    const r = page.request;
    const res = await fetch(`/api/v1/service/requests/${r.call_id}`, { headers: { authorization: `Bearer ${r.room_token}` } });
    return res.status === 200 ? res.json() : null;
  }

  async function watch() {
    while (page.request) {
      const s = await status();
      if (s) {
        page.request.state = s.state;
        $('position').textContent = Math.max(0, s.position - 1);
        if (s.state === 'connecting' || s.state === 'connected') return join();
        if (['cancelled', 'rejected', 'timed_out', 'failed', 'ended'].includes(s.state)) {
          $('waiting').querySelector('h2').textContent = '客服暂时无法接听，请稍后再试';
          return;
        }
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  async function cancel() {
    const r = page.request;
    await fetch(`/api/v1/service/requests/${r.call_id}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${r.room_token}` } });
    page.request = null;
    $('waiting').querySelector('h2').textContent = '已取消';
  }

  function join() {
    const r = page.request;
    $('waiting').hidden = true;
    $('call').hidden = false;
    $('controls').hidden = false;
    $('camera').hidden = r.kind !== 'video';
    $('camera').onclick = async () => {
      page.cameraOn = await KefuCall.setCamera(!page.cameraOn);
      $('camera').textContent = page.cameraOn ? '关闭摄像头' : '开启摄像头';
    };
    $('hang-up').onclick = () => KefuCall.hangUp();
    KefuCall.join({ token: r.room_token, kind: r.kind, cameraOn: false });
  }
})();
