// The one string catalogue of every page. People read zh-CN; English only fills a key
// zh-CN lacks (never shown beside Chinese). Pages mark static text with data-i18n
// (textContent), data-i18n-placeholder, data-i18n-aria-label or data-i18n-alt, and
// scripts call KefuStrings.t(key, vars). Server errors reach people through
// KefuStrings.errorText(body, fallbackKey): by their machine-readable `error` code, never
// the server's own (English) message. Scripts never branch on displayed text.
'use strict';

(function () {
  const zh = {
    // Shared
    'app.loading': '正在加载…',
    'camera.on': '开启摄像头',
    'camera.off': '关闭摄像头',
    'sound.on': '开启声音',
    'call.hang_up': '挂断',
    'consent.name': '称呼',
    'consent.default_name': '访客',
    'consent.agree': '我已阅读并同意《视频服务授权说明》',

    // The call, on every page that joins one (call.js)
    'call.waiting_other': '等待对方加入…',
    'call.in_call': '通话中',
    'call.connecting': '正在连接…',
    'call.reconnecting': '网络已断开，正在重新连接…',
    'call.media_failed': '媒体连接失败',
    'call.media_disconnected': '媒体连接已断开',
    'call.device_unavailable': '无法使用摄像头或麦克风，请检查权限设置',
    'call.other_left': '对方已离开',
    'call.ended': '通话已结束',
    'call.ended.system_shutdown': '服务正在维护，通话已结束',
    'call.ended.network_lost': '对方网络中断，通话已结束',
    'call.disconnected': '与服务器的连接已断开',
    'call.no_token': '链接缺少通话凭证，请向客服索取新链接',

    // Signaling errors (docs/signaling.md), by code
    'signal.error.invalid_message': '消息格式错误',
    'signal.error.message_too_large': '消息过大',
    'signal.error.invalid_token': '通话凭证无效，请向客服索取新链接',
    'signal.error.token_expired': '通话凭证已过期，请向客服索取新链接',
    'signal.error.unknown_room': '通话不存在或已结束',
    'signal.error.room_full': '通话人数已满',
    'signal.error.join_timeout': '加入通话超时，请刷新重试',
    'signal.error.not_joined': '尚未加入通话',
    'signal.error.already_joined': '已加入通话',
    'signal.error.bad_sdp': '媒体协商失败，请刷新重试',
    'signal.error.bad_candidate': '网络候选地址无效',
    'signal.error.restart_failed': '正在重新建立媒体连接…',
    'signal.error.replaced': '您已在其他页面加入本次通话',
    'signal.error.internal': '服务暂时不可用，请稍后再试',
    'signal.error.generic': '通话出错，请稍后再试',

    // REST API errors, by code
    'error.unauthorized': '请先登录',
    'error.forbidden': '没有权限执行此操作',
    'error.not_found': '未找到',
    'error.validation': '输入有误，请检查后重试',
    'error.bad_request': '请求格式错误',
    'error.payload_too_large': '内容过大',
    'error.conflict': '与现有数据冲突',
    'error.too_many_requests': '尝试次数过多，请稍后再试',
    'error.draining': '服务正在重启，请稍后再试',
    'error.internal': '服务内部错误，请稍后再试',
    'error.all_agents_busy': '客服全忙，请稍后再试',
    'error.video_service_disabled': '视频服务未开通，请联系管理员',
    'error.verification_required': '外呼前需要人脸核验',
    'error.at_capacity': '同时进行的通话已达上限',
    'error.invalid_transition': '通话状态已变化，无法执行此操作',
    'error.raced': '通话状态刚刚变化，请重试',
    'error.call_over': '通话已结束',
    'error.not_failed': '只有失败的录制可以重试',
    'error.generic': '操作失败，请稍后再试',

    // Customer: the service page
    'service.title': '在线客服',
    'service.title_of': '{name} 在线客服',
    'service.notice': '为了为您提供服务，通话将使用您的麦克风和摄像头（摄像头默认关闭，可随时开启），并会被录制。',
    'service.video': '视频通话',
    'service.voice': '语音通话',
    'service.connecting': '正在为您接通客服…',
    'service.position_before': '前面还有',
    'service.position_after': '位',
    'service.cancel': '取消',
    'service.unknown': '找不到该客服',
    'service.cannot_connect': '暂时无法接通，请稍后再试',
    'service.unavailable': '客服暂时无法接听，请稍后再试',
    'service.cancelled': '已取消',

    // Customer: an agent's invite
    'invite.title': '视频客服',
    'invite.title_video': '{name} 视频客服',
    'invite.title_voice': '{name} 语音客服',
    'invite.notice': '为了为您提供服务，本次通话将使用您的麦克风',
    'invite.notice_camera': '和摄像头（默认关闭，可随时开启）',
    'invite.notice_end': '，并会被录制。',
    'invite.accept': '同意并接通',
    'invite.invalid': '邀请已失效',
    'invite.cannot_connect': '无法接通，请稍后再试',

    // Agent: the workbench
    'wb.title': '坐席工作台',
    'wb.sign_in_first': '请登录',
    'wb.signed_in': '已登录',
    'wb.login': '账号',
    'wb.password': '密码',
    'wb.sign_in': '登录',
    'wb.wrong_login': '账号或密码错误',
    'wb.accepting': '在线接待',
    'wb.waiting': '排队',
    'wb.incoming': '来电',
    'wb.kind.video': '视频',
    'wb.kind.voice': '语音',
    'wb.answer': '接听',
    'wb.decline': '拒接',
    'wb.video_call': '视频通话',
    'wb.voice_call': '语音通话',
    'wb.beauty': '美颜',
    'wb.beauty_title': '美颜设置',
    'wb.beauty_preview_note': '预览为服务器处理后的画面（客户看到的效果）',
    'wb.beauty_preview_unavailable': '预览不可用',
    'wb.beauty_camera_unavailable': '无法打开摄像头',
    'wb.beauty_preview_error': '预览出错',
    'wb.beauty_not_saved': '保存失败',
    'wb.preset': '预设',
    'wb.preset.none': '无',
    'wb.preset.natural': '自然',
    'wb.preset.smooth': '磨皮',
    'wb.preset.fair': '美白',
    'wb.preset.bright': '亮丽',
    'wb.smoothing': '磨皮',
    'wb.whitening': '美白',
    'wb.ruddiness': '红润',
    'wb.sharpness': '锐化',
    'wb.reset': '重置',
    'wb.cancel': '取消',
    'wb.confirm': '确认',
    'wb.no_service': '视频服务未开通，请联系管理员。',
    'wb.send_invite': '请客户打开链接或扫码：',
    'wb.call_state': '通话状态',
    'wb.recording': '● 录制中',
    'wb.invite_qr': '邀请二维码',
    'wb.customer': '客户',
    'wb.you': '我',
    'wb.records': '图片 / 音视频',
    'wb.play': '播放',
    'wb.rec.recording': '录制中…',
    'wb.rec.processing': '处理中…',
    'wb.rec.failed': '失败',
    'wb.gate_required': '外呼前需要人脸核验',
    'wb.gate_ok': '人脸核验有效',
    'wb.state.requested': '排队中',
    'wb.state.inviting': '等待客户打开邀请',
    'wb.state.ringing': '振铃中',
    'wb.state.connecting': '正在连接',
    'wb.state.connected': '通话中',
    'wb.state.ended': '已结束',
    'wb.state.cancelled': '已取消',
    'wb.state.rejected': '已拒接',
    'wb.state.timed_out': '无人接听',
    'wb.state.failed': '失败',

    // Admin: the console
    'adm.title': '管理后台',
    'adm.admins_only': '需要管理员账号',
    'adm.video_service': '视频服务开通',
    'adm.agent': '坐席',
    'adm.name': '姓名',
    'adm.id_number': '身份证号',
    'adm.status': '状态',
    'adm.video': '视频服务',
    'adm.verifications': '人脸核验记录',
    'adm.all': '全部',
    'adm.from': '从',
    'adm.to': '到',
    'adm.result': '结果',
    'adm.passed': '通过',
    'adm.not_passed': '未通过',
    'adm.search': '查询',
    'adm.export': '导出 CSV',
    'adm.time': '时间',
    'adm.main_account': '主账号',
    'adm.passed_at': '通过时间',
    'adm.recordings': '通话录像',
    'adm.kind': '类型',
    'adm.file': '文件',
    'adm.duration': '时长',
    'adm.download': '下载',
    'adm.retry': '重试',
    'adm.customer_filter': '客户 {name} ✕',
    'adm.presence.online': '在线',
    'adm.presence.away': '离开',
    'adm.presence.offline': '离线',
    'adm.rec.recording': '录制中',
    'adm.rec.processing': '处理中',
    'adm.rec.ready': '可播放',
    'adm.rec.failed': '失败',
    'adm.failure.recording': '录制失败',
    'adm.failure.transcoding': '转码失败',
    'adm.failure.upload': '上传失败',
  };

  // Fallback only: a key zh-CN lacks.
  const en = {
    'app.loading': 'Loading…',
    'error.generic': 'Something went wrong; please try again later',
    'signal.error.generic': 'Call error; please try again later',
  };

  function t(key, vars) {
    let text = zh[key] ?? en[key] ?? key;
    if (vars) for (const [k, v] of Object.entries(vars)) text = text.split(`{${k}}`).join(String(v));
    return text;
  }

  /** What to tell a person about a failed API call: the catalogue's text for its code. */
  function errorText(body, fallbackKey = 'error.generic') {
    const code = body && typeof body === 'object' && body.error;
    return code && zh[`error.${code}`] ? t(`error.${code}`) : t(fallbackKey);
  }

  function apply(root = document) {
    for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
    for (const el of root.querySelectorAll('[data-i18n-value]')) el.value = t(el.dataset.i18nValue);
    for (const el of root.querySelectorAll('[data-i18n-aria-label]')) el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
    for (const el of root.querySelectorAll('[data-i18n-alt]')) el.alt = t(el.dataset.i18nAlt);
  }

  window.KefuStrings = { t, errorText, apply, has: (key) => key in zh };
  // Scripts load at the end of <body>: the markup is there already.
  apply();
})();
