//! Beauty-dialog previews in Redis, so the agent's page and its preview room may sit
//! on different nodes: `<prefix>:preview:agent:<agent>` (a hash: room, live, the four
//! knobs) and `<prefix>:preview:room:<room>` → agent. Each operation is one script,
//! so the two keys never disagree. Both expire an hour after the last change or
//! join (a dialog left open longer is closed by its page anyway).

use std::time::Duration;

use kefu_beauty::BeautyParams;

use super::{RedisCluster, unavailable};
use crate::beauty::preview::{Answer, PreviewStore, ROOM_PREFIX, Tried};
use crate::cluster::ClusterError;

const TTL: Duration = Duration::from_secs(3600);

const OPEN: &str = r"local old = redis.call('hget', KEYS[1], 'room')
if old then redis.call('del', ARGV[1] .. ':preview:room:' .. old) end
redis.call('del', KEYS[1])
redis.call('hset', KEYS[1], 'room', ARGV[2], 'live', '0', 'smoothing', ARGV[5],
  'whitening', ARGV[6], 'ruddiness', ARGV[7], 'sharpness', ARGV[8])
redis.call('pexpire', KEYS[1], ARGV[3])
redis.call('set', ARGV[1] .. ':preview:room:' .. ARGV[2], ARGV[4], 'PX', ARGV[3])
return old";

const WENT_LIVE: &str = r"if redis.call('hget', KEYS[1], 'room') ~= ARGV[1] then return false end
redis.call('hset', KEYS[1], 'live', '1')
redis.call('pexpire', KEYS[1], ARGV[2])
redis.call('pexpire', ARGV[3] .. ':preview:room:' .. ARGV[1], ARGV[2])
return redis.call('hmget', KEYS[1], 'smoothing', 'whitening', 'ruddiness', 'sharpness')";

const SET_PARAMS: &str = r"if redis.call('exists', KEYS[1]) == 0 then return false end
redis.call('hset', KEYS[1], 'smoothing', ARGV[1], 'whitening', ARGV[2],
  'ruddiness', ARGV[3], 'sharpness', ARGV[4])
redis.call('pexpire', KEYS[1], ARGV[5])
redis.call('pexpire', ARGV[6] .. ':preview:room:' .. redis.call('hget', KEYS[1], 'room'), ARGV[5])
return redis.call('hmget', KEYS[1], 'room', 'live')";

const CLOSE: &str = r"local room = redis.call('hget', KEYS[1], 'room')
redis.call('del', KEYS[1])
if room then redis.call('del', ARGV[1] .. ':preview:room:' .. room) end
return room";

const CLOSE_ROOM: &str = r"local agent = redis.call('get', KEYS[1])
if not agent then return 0 end
redis.call('del', KEYS[1])
local akey = ARGV[1] .. ':preview:agent:' .. agent
if redis.call('hget', akey, 'room') == ARGV[2] then redis.call('del', akey) end
return 1";

#[derive(Debug, Clone)]
pub struct RedisPreviews {
    redis: RedisCluster,
}

impl RedisPreviews {
    pub fn new(redis: RedisCluster) -> Self {
        Self { redis }
    }

    fn agent_key(&self, agent: &str) -> String {
        self.redis.key(&["preview", "agent", agent])
    }

    fn prefix(&self) -> String {
        self.redis.key(&[])
    }
}

fn ttl_ms() -> u64 {
    u64::try_from(TTL.as_millis()).unwrap_or(u64::MAX)
}

/// The four knobs as stored (Rust's float text round-trips exactly).
fn knobs(p: &BeautyParams) -> [String; 4] {
    [p.smoothing, p.whitening, p.ruddiness, p.sharpness].map(|v| v.to_string())
}

fn params_from(stored: &[Option<String>]) -> Result<BeautyParams, ClusterError> {
    let value = |i: usize| -> Result<f64, ClusterError> {
        stored
            .get(i)
            .and_then(|v| v.as_deref())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ClusterError::Corrupt("beauty preview settings".into()))
    };
    Ok(BeautyParams {
        smoothing: value(0)?,
        whitening: value(1)?,
        ruddiness: value(2)?,
        sharpness: value(3)?,
    })
}

impl PreviewStore for RedisPreviews {
    fn open<'a>(
        &'a self,
        agent: &'a str,
        params: BeautyParams,
    ) -> Answer<'a, (String, Option<String>)> {
        Box::pin(async move {
            let room = format!("{ROOM_PREFIX}{}", uuid::Uuid::new_v4());
            let [s, w, r, sh] = knobs(&params);
            let old: Option<String> = redis::Script::new(OPEN)
                .key(self.agent_key(agent))
                .arg(self.prefix())
                .arg(&room)
                .arg(ttl_ms())
                .arg(agent)
                .arg(s)
                .arg(w)
                .arg(r)
                .arg(sh)
                .invoke_async(&mut self.redis.conn())
                .await
                .map_err(unavailable)?;
            Ok((room, old))
        })
    }

    fn went_live<'a>(&'a self, room: &'a str, agent: &'a str) -> Answer<'a, Option<BeautyParams>> {
        Box::pin(async move {
            let stored: Option<Vec<Option<String>>> = redis::Script::new(WENT_LIVE)
                .key(self.agent_key(agent))
                .arg(room)
                .arg(ttl_ms())
                .arg(self.prefix())
                .invoke_async(&mut self.redis.conn())
                .await
                .map_err(unavailable)?;
            stored.map(|s| params_from(&s)).transpose()
        })
    }

    fn set_params<'a>(&'a self, agent: &'a str, params: BeautyParams) -> Answer<'a, Tried> {
        Box::pin(async move {
            let [s, w, r, sh] = knobs(&params);
            let stored: Option<Vec<Option<String>>> = redis::Script::new(SET_PARAMS)
                .key(self.agent_key(agent))
                .arg(s)
                .arg(w)
                .arg(r)
                .arg(sh)
                .arg(ttl_ms())
                .arg(self.prefix())
                .invoke_async(&mut self.redis.conn())
                .await
                .map_err(unavailable)?;
            let Some(stored) = stored else {
                return Ok(Tried::NoPreview);
            };
            match (
                stored.first().cloned().flatten(),
                stored.get(1).cloned().flatten(),
            ) {
                (Some(room), Some(live)) if live == "1" => Ok(Tried::Live { room }),
                (Some(_), Some(_)) => Ok(Tried::Pending),
                _ => Err(ClusterError::Corrupt("beauty preview".into())),
            }
        })
    }

    fn close<'a>(&'a self, agent: &'a str) -> Answer<'a, Option<String>> {
        Box::pin(async move {
            redis::Script::new(CLOSE)
                .key(self.agent_key(agent))
                .arg(self.prefix())
                .invoke_async(&mut self.redis.conn())
                .await
                .map_err(unavailable)
        })
    }

    fn close_room<'a>(&'a self, room: &'a str) -> Answer<'a, bool> {
        Box::pin(async move {
            let closed: i64 = redis::Script::new(CLOSE_ROOM)
                .key(self.redis.key(&["preview", "room", room]))
                .arg(self.prefix())
                .arg(room)
                .invoke_async(&mut self.redis.conn())
                .await
                .map_err(unavailable)?;
            Ok(closed == 1)
        })
    }
}
