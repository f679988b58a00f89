//! Rooms across nodes. A room is the hash `<prefix>:room:<room>`: `open`, `standing`,
//! one `m:<participant>` per member (JSON: role, node, session, media up) and the
//! lasting notices `lasting:<side>`. Every change is one script, so two nodes never
//! see half of one. A message for a member goes to the node holding its WebSocket: on
//! this node straight to the session's mailbox, elsewhere published on that node's
//! channel `<prefix>:bus:<node>`, which each node's listener hands to its sessions.
//!
//! A call's room expires a day after its last join (a room whose nodes all died is
//! not kept forever); standing rooms do not.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use kefu_proto::Side;
use kefu_proto::signaling::{ErrorCode, PeerInfo, ServerMessage};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::{RedisCluster, unavailable};
use crate::cluster::ClusterError;
use crate::cluster::bus::{Bus, Outbox, RoomBus, RoomCounts, RoomError};

/// Participants a room admits: one agent and one customer.
const CAPACITY: usize = 2;
/// A call's room outlives its last join by this much at most.
const ROOM_TTL: Duration = Duration::from_secs(24 * 3600);

/// A member as stored in the room's hash. The session is text: Lua's JSON numbers
/// are doubles and would mangle a large one.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Member {
    role: Side,
    node: String,
    session: String,
    up: bool,
}

/// A message for one member, across nodes.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    room: String,
    participant: String,
    /// Only this session of the participant (the others are stale).
    session: String,
    message: ServerMessage,
    /// The member is out of the room once told (the room ended, or it was replaced).
    closes: bool,
}

const CREATE: &str = r"redis.call('hset', KEYS[1], 'open', '1', 'standing', '1')
redis.call('persist', KEYS[1])";

const OPEN: &str = r"redis.call('hset', KEYS[1], 'open', '1')
if redis.call('hget', KEYS[1], 'standing') ~= '1' then redis.call('pexpire', KEYS[1], ARGV[1]) end";

/// Members as a flat list: participant, member JSON, participant, member JSON, …
const MEMBERS_OF: &str = r"local function members(key)
  local fields = redis.call('hgetall', key)
  local out = {}
  for i = 1, #fields, 2 do
    if string.sub(fields[i], 1, 2) == 'm:' then
      table.insert(out, string.sub(fields[i], 3))
      table.insert(out, fields[i + 1])
    end
  end
  return out
end
";

const CLOSE_IF_EMPTY: &str = r"if #members(KEYS[1]) == 0 and redis.call('hget', KEYS[1], 'standing') ~= '1' then
  redis.call('del', KEYS[1])
end";

/// → {'unknown'} | {'full'} | {'ok', old member JSON or '', other members…}
const JOIN: &str = r"if redis.call('hget', KEYS[1], 'open') ~= '1' then return {'unknown'} end
local all = members(KEYS[1])
local others = {}
local old = ''
for i = 1, #all, 2 do
  if all[i] == ARGV[1] then old = all[i + 1] else
    table.insert(others, all[i]); table.insert(others, all[i + 1]) end
end
if old == '' and #others / 2 >= tonumber(ARGV[3]) then return {'full'} end
redis.call('hset', KEYS[1], 'm:' .. ARGV[1], ARGV[2])
if redis.call('hget', KEYS[1], 'standing') ~= '1' then redis.call('pexpire', KEYS[1], ARGV[4]) end
local out = {'ok', old}
for _, v in ipairs(others) do table.insert(out, v) end
return out";

/// Whether member ARGV[1] is held by node ARGV[2], session ARGV[3].
const HOLDS: &str = r"local function holds(key)
  local m = redis.call('hget', key, 'm:' .. ARGV[1])
  if not m then return nil end
  local d = cjson.decode(m)
  if d.node ~= ARGV[2] or d.session ~= ARGV[3] then return nil end
  return d
end
";

/// → {} when the session did not hold the place, else {'left', remaining members…}
const LEAVE: &str = r"if not holds(KEYS[1]) then return {} end
redis.call('hdel', KEYS[1], 'm:' .. ARGV[1])
local rest = members(KEYS[1])
if #rest == 0 and redis.call('hget', KEYS[1], 'standing') ~= '1' then redis.call('del', KEYS[1]) end
local out = {'left'}
for _, v in ipairs(rest) do table.insert(out, v) end
return out";

/// → 1 when the room is full and every member's media is up.
const MEDIA_UP: &str = r"local d = holds(KEYS[1])
if not d then return 0 end
d.up = true
redis.call('hset', KEYS[1], 'm:' .. ARGV[1], cjson.encode(d))
local all = members(KEYS[1])
if #all / 2 ~= tonumber(ARGV[4]) then return 0 end
for i = 2, #all, 2 do
  if not cjson.decode(all[i]).up then return 0 end
end
return 1";

const END: &str = r"local all = members(KEYS[1])
redis.call('del', KEYS[1])
return all";

const NOTIFY_LASTING: &str = r"if redis.call('exists', KEYS[1]) == 0 then return {} end
redis.call('hset', KEYS[1], 'lasting:' .. ARGV[1], ARGV[2])
return members(KEYS[1])";

/// This node's sessions, by (room, participant): (session, mailbox).
#[derive(Debug, Default)]
struct Local {
    sessions: HashMap<(String, String), (u64, Outbox)>,
    /// Rooms with a member here that were full when last heard of (metrics).
    full: HashSet<String>,
}

#[derive(Debug, Clone)]
pub struct RedisRooms {
    redis: RedisCluster,
    local: Arc<Mutex<Local>>,
    /// Membership changes of this node, one at a time, so its map and Redis agree
    /// (two joins of one participant racing would otherwise leave them apart).
    changes: Arc<tokio::sync::Mutex<()>>,
    listener: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for RedisRooms {
    fn drop(&mut self) {
        // The last handle stops the listener.
        if Arc::strong_count(&self.listener) == 1 {
            self.listener.abort();
        }
    }
}

fn lock(local: &Mutex<Local>) -> std::sync::MutexGuard<'_, Local> {
    // Plain maps: still consistent after a panic elsewhere.
    local.lock().unwrap_or_else(|p| p.into_inner())
}

/// Hands a message to the session it is for, if that session is on this node.
fn deliver_here(local: &Mutex<Local>, envelope: Envelope) {
    let mut local = lock(local);
    let key = (envelope.room.clone(), envelope.participant.clone());
    let Some(outbox) = local
        .sessions
        .get(&key)
        .filter(|(session, _)| session.to_string() == envelope.session)
        .map(|(_, outbox)| outbox.clone())
    else {
        return;
    };
    match &envelope.message {
        ServerMessage::PeerJoined(_) => {
            local.full.insert(envelope.room.clone());
        }
        ServerMessage::PeerLeft { .. } => {
            local.full.remove(&envelope.room);
        }
        _ => {}
    }
    // A full mailbox is a session about to be dropped for lagging.
    let _ = outbox.try_send(envelope.message);
    if envelope.closes {
        local.sessions.remove(&key);
        if !local
            .sessions
            .keys()
            .any(|(room, _)| *room == envelope.room)
        {
            local.full.remove(&envelope.room);
        }
    }
}

impl RedisRooms {
    /// Rooms in Redis, with this node's listener for messages from other nodes;
    /// returns once the listener is subscribed (or after two seconds of trying: it
    /// keeps trying).
    pub async fn start(redis: RedisCluster) -> Self {
        let local = Arc::new(Mutex::new(Local::default()));
        let (ready, subscribed) = tokio::sync::oneshot::channel();
        let listener = tokio::spawn(listen(redis.clone(), local.clone(), ready));
        if tokio::time::timeout(Duration::from_secs(2), subscribed)
            .await
            .is_err()
        {
            warn!("room messages from other nodes not flowing yet");
        }
        Self {
            redis,
            local,
            changes: Arc::default(),
            listener: Arc::new(listener),
        }
    }

    fn room_key(&self, room: &str) -> String {
        self.redis.key(&["room", room])
    }

    async fn run(
        &self,
        script: &str,
        room: &str,
        args: &[String],
    ) -> Result<Vec<String>, ClusterError> {
        let script = redis::Script::new(script);
        let mut invocation = script.key(self.room_key(room));
        for arg in args {
            invocation.arg(arg);
        }
        invocation
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(unavailable)
    }

    /// Sends `message` to `participant`'s session `session` on `member.node`.
    async fn send(
        &self,
        room: &str,
        participant: &str,
        member: &Member,
        message: ServerMessage,
        closes: bool,
    ) {
        let envelope = Envelope {
            room: room.to_owned(),
            participant: participant.to_owned(),
            session: member.session.clone(),
            message,
            closes,
        };
        if member.node == self.redis.node() {
            deliver_here(&self.local, envelope);
            return;
        }
        let channel = self.redis.key(&["bus", &member.node]);
        let published = match serde_json::to_string(&envelope) {
            Ok(json) => self
                .redis
                .conn()
                .publish::<_, _, i64>(channel, json)
                .await
                .map_err(unavailable),
            Err(e) => Err(ClusterError::Corrupt(e.to_string())),
        };
        if let Err(e) = published {
            warn!(%room, node = %member.node, "message not relayed: {e}");
        }
    }

    fn me(&self, session: u64) -> [String; 2] {
        [self.redis.node().to_owned(), session.to_string()]
    }
}

/// Participant/member pairs from a script's flat list.
fn pairs(flat: &[String]) -> Vec<(String, Member)> {
    flat.chunks_exact(2)
        .filter_map(|pair| match serde_json::from_str::<Member>(&pair[1]) {
            Ok(member) => Some((pair[0].clone(), member)),
            Err(e) => {
                warn!("unreadable room member: {e}");
                None
            }
        })
        .collect()
}

fn scripted(body: &str, with_holds: bool) -> String {
    let mut script = String::from(MEMBERS_OF);
    if with_holds {
        script.push_str(HOLDS);
    }
    script.push_str(body);
    script
}

fn ttl_ms() -> String {
    ROOM_TTL.as_millis().to_string()
}

impl RoomBus for RedisRooms {
    fn create<'a>(&'a self, room: &'a str) -> Bus<'a, ()> {
        Box::pin(async move { self.run(CREATE, room, &[]).await.map(drop) })
    }

    fn open<'a>(&'a self, room: &'a str) -> Bus<'a, ()> {
        Box::pin(async move { self.run(OPEN, room, &[ttl_ms()]).await.map(drop) })
    }

    fn close_if_empty<'a>(&'a self, room: &'a str) -> Bus<'a, ()> {
        Box::pin(async move {
            self.run(&scripted(CLOSE_IF_EMPTY, false), room, &[])
                .await
                .map(drop)
        })
    }

    fn exists<'a>(&'a self, room: &'a str) -> Bus<'a, bool> {
        Box::pin(async move {
            let open: Option<String> = self
                .redis
                .conn()
                .hget(self.room_key(room), "open")
                .await
                .map_err(unavailable)?;
            Ok(open.as_deref() == Some("1"))
        })
    }

    fn join<'a>(
        &'a self,
        room: &'a str,
        participant: &'a str,
        role: Side,
        session: u64,
        outbox: Outbox,
    ) -> BoxFuture<'a, Result<Vec<PeerInfo>, RoomError>> {
        Box::pin(async move {
            let _one_at_a_time = self.changes.lock().await;
            let me = Member {
                role,
                node: self.redis.node().to_owned(),
                session: session.to_string(),
                up: false,
            };
            let json = serde_json::to_string(&me).map_err(|_| RoomError::Unavailable)?;
            let key = (room.to_owned(), participant.to_owned());
            // In the map before Redis: a peer's message may arrive right after.
            let previous = lock(&self.local)
                .sessions
                .insert(key.clone(), (session, outbox));
            let restore = |previous: Option<(u64, Outbox)>| {
                let mut local = lock(&self.local);
                match previous {
                    Some(p) => local.sessions.insert(key.clone(), p),
                    None => local.sessions.remove(&key),
                };
            };
            let args = [participant.to_owned(), json, CAPACITY.to_string(), ttl_ms()];
            let reply = match self.run(&scripted(JOIN, false), room, &args).await {
                Ok(reply) => reply,
                Err(e) => {
                    warn!(%room, "join not recorded: {e}");
                    restore(previous);
                    return Err(RoomError::Unavailable);
                }
            };
            match reply.first().map(String::as_str) {
                Some("ok") => {}
                Some("full") => {
                    restore(previous);
                    return Err(RoomError::Full);
                }
                _ => {
                    restore(previous);
                    return Err(RoomError::UnknownRoom);
                }
            }
            let others = pairs(reply.get(2..).unwrap_or_default());
            if others.len() + 1 == CAPACITY {
                lock(&self.local).full.insert(room.to_owned());
            }
            let replaced = || {
                ServerMessage::error(
                    ErrorCode::Replaced,
                    "this participant joined from another connection",
                )
            };
            // A session of this node held the place: told here, its entry is gone.
            if let Some((old, old_outbox)) = previous
                && old != session
            {
                let _ = old_outbox.try_send(replaced());
            }
            if let Some(old) = reply
                .get(1)
                .filter(|o| !o.is_empty())
                .and_then(|o| serde_json::from_str::<Member>(o).ok())
                .filter(|old| old.node != me.node)
            {
                self.send(room, participant, &old, replaced(), true).await;
            }
            let mine = PeerInfo {
                participant: participant.to_owned(),
                role,
            };
            let mut peers = Vec::new();
            for (id, member) in &others {
                peers.push(PeerInfo {
                    participant: id.clone(),
                    role: member.role,
                });
                self.send(
                    room,
                    id,
                    member,
                    ServerMessage::PeerJoined(mine.clone()),
                    false,
                )
                .await;
            }
            Ok(peers)
        })
    }

    fn leave<'a>(&'a self, room: &'a str, participant: &'a str, session: u64) -> Bus<'a, bool> {
        Box::pin(async move {
            let _one_at_a_time = self.changes.lock().await;
            // This session is going whatever Redis says: out of the map first.
            {
                let mut local = lock(&self.local);
                let key = (room.to_owned(), participant.to_owned());
                if local.sessions.get(&key).is_some_and(|(s, _)| *s == session) {
                    local.sessions.remove(&key);
                    local.full.remove(room);
                }
            }
            let [node, session_text] = self.me(session);
            let reply = self
                .run(
                    &scripted(LEAVE, true),
                    room,
                    &[participant.to_owned(), node, session_text],
                )
                .await?;
            if reply.first().map(String::as_str) != Some("left") {
                return Ok(false);
            }
            for (id, member) in pairs(reply.get(1..).unwrap_or_default()) {
                let left = ServerMessage::PeerLeft {
                    participant: participant.to_owned(),
                };
                self.send(room, &id, &member, left, false).await;
            }
            Ok(true)
        })
    }

    fn set_media_up<'a>(
        &'a self,
        room: &'a str,
        participant: &'a str,
        session: u64,
    ) -> Bus<'a, bool> {
        Box::pin(async move {
            let [node, session_text] = self.me(session);
            let all_up: i64 = redis::Script::new(&scripted(MEDIA_UP, true))
                .key(self.room_key(room))
                .arg(participant)
                .arg(node)
                .arg(session_text)
                .arg(CAPACITY)
                .invoke_async(&mut self.redis.conn())
                .await
                .map_err(unavailable)?;
            Ok(all_up == 1)
        })
    }

    fn end<'a>(&'a self, room: &'a str, notice: ServerMessage) -> Bus<'a, Vec<(String, Side)>> {
        Box::pin(async move {
            let _one_at_a_time = self.changes.lock().await;
            // This node's members are told and let go whatever Redis says.
            let here: Vec<(String, u64, Outbox)> = {
                let mut local = lock(&self.local);
                local.full.remove(room);
                let keys: Vec<_> = local
                    .sessions
                    .keys()
                    .filter(|(r, _)| r == room)
                    .cloned()
                    .collect();
                keys.into_iter()
                    .filter_map(|k| local.sessions.remove(&k).map(|(s, o)| (k.1, s, o)))
                    .collect()
            };
            for (_, _, outbox) in &here {
                let _ = outbox.try_send(notice.clone());
            }
            let reply = self.run(&scripted(END, false), room, &[]).await?;
            let members = pairs(&reply);
            for (id, member) in &members {
                if member.node != self.redis.node() {
                    self.send(room, id, member, notice.clone(), true).await;
                }
            }
            Ok(members.into_iter().map(|(id, m)| (id, m.role)).collect())
        })
    }

    fn notify_lasting<'a>(
        &'a self,
        room: &'a str,
        about: Side,
        message: ServerMessage,
    ) -> Bus<'a, ()> {
        Box::pin(async move {
            let json = serde_json::to_string(&message)
                .map_err(|e| ClusterError::Corrupt(e.to_string()))?;
            let reply = self
                .run(
                    &scripted(NOTIFY_LASTING, false),
                    room,
                    &[side_name(about).to_owned(), json],
                )
                .await?;
            for (id, member) in pairs(&reply) {
                self.send(room, &id, &member, message.clone(), false).await;
            }
            Ok(())
        })
    }

    fn lasting<'a>(&'a self, room: &'a str) -> Bus<'a, Vec<ServerMessage>> {
        Box::pin(async move {
            let stored: Vec<Option<String>> = self
                .redis
                .conn()
                .hget(self.room_key(room), &["lasting:agent", "lasting:customer"])
                .await
                .map_err(unavailable)?;
            Ok(stored
                .into_iter()
                .flatten()
                .filter_map(|json| serde_json::from_str(&json).ok())
                .collect())
        })
    }

    fn members<'a>(&'a self, room: &'a str) -> Bus<'a, Vec<(String, Side)>> {
        Box::pin(async move {
            let script = format!("{MEMBERS_OF}return members(KEYS[1])");
            let reply = self.run(&script, room, &[]).await?;
            Ok(pairs(&reply)
                .into_iter()
                .map(|(id, m)| (id, m.role))
                .collect())
        })
    }

    fn counts(&self) -> RoomCounts {
        let local = lock(&self.local);
        RoomCounts {
            calls: local.full.len() as u64,
            participants: local.sessions.len() as u64,
        }
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Agent => "agent",
        Side::Customer => "customer",
    }
}

/// This node's listener: messages other nodes published for its sessions.
async fn listen(
    redis: RedisCluster,
    local: Arc<Mutex<Local>>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let channel = redis.key(&["bus", redis.node()]);
    super::subscribe::listen(
        redis,
        channel,
        "room messages",
        Some(ready),
        |payload: String| {
            match serde_json::from_str::<Envelope>(&payload) {
                Ok(envelope) => deliver_here(&local, envelope),
                Err(e) => warn!("unreadable room message: {e}"),
            }
            std::future::ready(())
        },
    )
    .await;
}
