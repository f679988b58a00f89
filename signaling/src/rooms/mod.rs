//! Rooms as signaling sees them: who is in which room, and how to reach them.
//!
//! Pure bookkeeping behind a mutex; no IO. The WebSocket sessions hold the senders.
//! `Rooms` is the in-process [`RoomBus`]; the room tokens and TURN credentials that
//! let people in live beside it.

pub mod token;
pub mod turn;

use std::collections::HashMap;
use std::sync::Mutex;

use kefu_proto::signaling::{ErrorCode, PeerInfo, ServerMessage};

use futures_util::future::BoxFuture;

pub use crate::cluster::bus::{Bus, Outbox, RoomBus, RoomCounts, RoomError};
use crate::rooms::token::Side;

/// Participants a room admits: one agent and one customer.
pub const ROOM_CAPACITY: usize = 2;

#[derive(Debug)]
struct Member {
    role: Side,
    /// Tells a replaced session apart from its successor with the same participant id.
    session: u64,
    outbox: Outbox,
    /// This member's media with the SFU is up.
    media_up: bool,
}

#[derive(Debug, Default)]
struct Room {
    members: HashMap<String, Member>,
    /// Standing rooms (from configuration) stay when empty; a call's room goes away
    /// with its last member, so the map never grows with the number of calls.
    standing: bool,
    /// The latest lasting notice about each side, for members joining later.
    lasting: HashMap<Side, ServerMessage>,
}

/// All rooms of this process.
#[derive(Debug, Default)]
pub struct Rooms {
    rooms: Mutex<HashMap<String, Room>>,
}

impl Rooms {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Room>> {
        // A panic while holding this lock leaves plain maps behind; keep serving.
        self.rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Rooms {
    pub fn create(&self, room: &str) {
        self.lock().entry(room.to_owned()).or_default().standing = true;
    }

    pub fn open(&self, room: &str) {
        self.lock().entry(room.to_owned()).or_default();
    }

    pub fn close_if_empty(&self, room: &str) {
        let mut rooms = self.lock();
        if rooms
            .get(room)
            .is_some_and(|r| r.members.is_empty() && !r.standing)
        {
            rooms.remove(room);
        }
    }

    pub fn exists(&self, room: &str) -> bool {
        self.lock().contains_key(room)
    }

    pub fn join(
        &self,
        room: &str,
        participant: &str,
        role: Side,
        session: u64,
        outbox: Outbox,
    ) -> Result<Vec<PeerInfo>, RoomError> {
        let mut rooms = self.lock();
        let r = rooms.get_mut(room).ok_or(RoomError::UnknownRoom)?;
        if !r.members.contains_key(participant) && r.members.len() >= ROOM_CAPACITY {
            return Err(RoomError::Full);
        }
        let me = PeerInfo {
            participant: participant.to_owned(),
            role,
        };
        if let Some(old) = r.members.remove(participant) {
            let _ = old.outbox.try_send(ServerMessage::error(
                ErrorCode::Replaced,
                "this participant joined from another connection",
            ));
        }
        let mut peers = Vec::new();
        for (id, m) in &r.members {
            peers.push(PeerInfo {
                participant: id.clone(),
                role: m.role,
            });
            let _ = m.outbox.try_send(ServerMessage::PeerJoined(me.clone()));
        }
        r.members.insert(
            participant.to_owned(),
            Member {
                role,
                session,
                outbox,
                media_up: false,
            },
        );
        Ok(peers)
    }

    pub fn leave(&self, room: &str, participant: &str, session: u64) -> bool {
        let mut rooms = self.lock();
        let Some(r) = rooms.get_mut(room) else {
            return false;
        };
        if r.members
            .get(participant)
            .is_none_or(|m| m.session != session)
        {
            return false;
        }
        r.members.remove(participant);
        for m in r.members.values() {
            let _ = m.outbox.try_send(ServerMessage::PeerLeft {
                participant: participant.to_owned(),
            });
        }
        if r.members.is_empty() && !r.standing {
            rooms.remove(room);
        }
        true
    }

    pub fn set_media_up(&self, room: &str, participant: &str, session: u64) -> bool {
        let mut rooms = self.lock();
        let Some(r) = rooms.get_mut(room) else {
            return false;
        };
        match r.members.get_mut(participant) {
            Some(m) if m.session == session => m.media_up = true,
            _ => return false,
        }
        r.members.len() == ROOM_CAPACITY && r.members.values().all(|m| m.media_up)
    }

    pub fn end(&self, room: &str, notice: ServerMessage) -> Vec<(String, Side)> {
        let Some(r) = self.lock().remove(room) else {
            return Vec::new();
        };
        r.members
            .into_iter()
            .map(|(id, m)| {
                let _ = m.outbox.try_send(notice.clone());
                (id, m.role)
            })
            .collect()
    }

    pub fn notify_lasting(&self, room: &str, about: Side, message: ServerMessage) {
        if let Some(r) = self.lock().get_mut(room) {
            for m in r.members.values() {
                // A full mailbox is a session about to be dropped for lagging.
                let _ = m.outbox.try_send(message.clone());
            }
            r.lasting.insert(about, message);
        }
    }

    pub fn lasting(&self, room: &str) -> Vec<ServerMessage> {
        self.lock()
            .get(room)
            .map(|r| r.lasting.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn members(&self, room: &str) -> Vec<(String, Side)> {
        self.lock()
            .get(room)
            .map(|r| {
                r.members
                    .iter()
                    .map(|(id, m)| (id.clone(), m.role))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn counts(&self) -> RoomCounts {
        let rooms = self.lock();
        let mut counts = RoomCounts::default();
        for r in rooms.values() {
            counts.participants += r.members.len() as u64;
            if r.members.len() == ROOM_CAPACITY {
                counts.calls += 1;
            }
        }
        counts
    }
}

impl RoomBus for Rooms {
    fn create<'a>(&'a self, room: &'a str) -> Bus<'a, ()> {
        Rooms::create(self, room);
        Box::pin(async { Ok(()) })
    }

    fn open<'a>(&'a self, room: &'a str) -> Bus<'a, ()> {
        Rooms::open(self, room);
        Box::pin(async { Ok(()) })
    }

    fn close_if_empty<'a>(&'a self, room: &'a str) -> Bus<'a, ()> {
        Rooms::close_if_empty(self, room);
        Box::pin(async { Ok(()) })
    }

    fn exists<'a>(&'a self, room: &'a str) -> Bus<'a, bool> {
        let exists = Rooms::exists(self, room);
        Box::pin(async move { Ok(exists) })
    }

    fn join<'a>(
        &'a self,
        room: &'a str,
        participant: &'a str,
        role: Side,
        session: u64,
        outbox: Outbox,
    ) -> BoxFuture<'a, Result<Vec<PeerInfo>, RoomError>> {
        let joined = Rooms::join(self, room, participant, role, session, outbox);
        Box::pin(async move { joined })
    }

    fn leave<'a>(&'a self, room: &'a str, participant: &'a str, session: u64) -> Bus<'a, bool> {
        let left = Rooms::leave(self, room, participant, session);
        Box::pin(async move { Ok(left) })
    }

    fn set_media_up<'a>(
        &'a self,
        room: &'a str,
        participant: &'a str,
        session: u64,
    ) -> Bus<'a, bool> {
        let all_up = Rooms::set_media_up(self, room, participant, session);
        Box::pin(async move { Ok(all_up) })
    }

    fn end<'a>(&'a self, room: &'a str, notice: ServerMessage) -> Bus<'a, Vec<(String, Side)>> {
        let gone = Rooms::end(self, room, notice);
        Box::pin(async move { Ok(gone) })
    }

    fn notify_lasting<'a>(
        &'a self,
        room: &'a str,
        about: Side,
        message: ServerMessage,
    ) -> Bus<'a, ()> {
        Rooms::notify_lasting(self, room, about, message);
        Box::pin(async { Ok(()) })
    }

    fn lasting<'a>(&'a self, room: &'a str) -> Bus<'a, Vec<ServerMessage>> {
        let notices = Rooms::lasting(self, room);
        Box::pin(async move { Ok(notices) })
    }

    fn members<'a>(&'a self, room: &'a str) -> Bus<'a, Vec<(String, Side)>> {
        let members = Rooms::members(self, room);
        Box::pin(async move { Ok(members) })
    }

    fn counts(&self) -> RoomCounts {
        Rooms::counts(self)
    }
}

/// The SFU's id for a participant: unique across rooms and roles.
pub fn media_participant_id(room: &str, sub: &str, role: Side) -> kefu_media_server::ParticipantId {
    let role = match role {
        Side::Agent => "agent",
        Side::Customer => "customer",
    };
    kefu_media_server::ParticipantId::new(format!("{room}/{role}/{sub}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    fn outbox() -> (Outbox, mpsc::Receiver<ServerMessage>) {
        mpsc::channel(8)
    }

    #[test]
    fn lasting_notices_reach_members_now_and_joiners_later() {
        use kefu_proto::signaling::ModerationState;
        let rooms = Rooms::default();
        rooms.open("call");
        let (a_tx, mut a_rx) = outbox();
        rooms.join("call", "a", Side::Agent, 1, a_tx).expect("a");
        let withheld = ServerMessage::Moderation {
            party: Side::Customer,
            state: ModerationState::Withheld,
        };
        rooms.notify_lasting("call", Side::Customer, withheld.clone());
        assert_eq!(
            a_rx.try_recv().ok(),
            Some(withheld.clone()),
            "sent to members now"
        );
        assert_eq!(rooms.lasting("call"), [withheld], "kept for later joiners");
        let restored = ServerMessage::Moderation {
            party: Side::Customer,
            state: ModerationState::Restored,
        };
        rooms.notify_lasting("call", Side::Customer, restored.clone());
        assert_eq!(
            rooms.lasting("call"),
            [restored],
            "the latest per side only"
        );
        assert!(rooms.lasting("nope").is_empty());
        rooms.notify_lasting("nope", Side::Agent, ServerMessage::Pong);
        assert!(
            rooms.lasting("nope").is_empty(),
            "no room is created by a notice"
        );
    }

    #[test]
    fn unknown_room_is_refused() {
        let rooms = Rooms::default();
        let (tx, _rx) = outbox();
        assert_eq!(
            rooms.join("nope", "a", Side::Agent, 1, tx),
            Err(RoomError::UnknownRoom)
        );
    }

    #[test]
    fn peers_are_told_about_each_other_and_a_third_is_refused() {
        let rooms = Rooms::default();
        rooms.create("r");
        let (a_tx, mut a_rx) = outbox();
        let (b_tx, _b_rx) = outbox();
        let (c_tx, _c_rx) = outbox();
        assert!(
            rooms
                .join("r", "a", Side::Agent, 1, a_tx)
                .expect("a")
                .is_empty()
        );
        let peers = rooms.join("r", "b", Side::Customer, 2, b_tx).expect("b");
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].participant, "a");
        assert!(
            matches!(a_rx.try_recv(), Ok(ServerMessage::PeerJoined(p)) if p.participant == "b")
        );
        assert_eq!(
            rooms.counts(),
            RoomCounts {
                calls: 1,
                participants: 2
            }
        );
        assert_eq!(
            rooms.join("r", "c", Side::Customer, 3, c_tx),
            Err(RoomError::Full)
        );

        assert!(!rooms.set_media_up("r", "a", 1), "b's media is not up yet");
        assert!(
            !rooms.set_media_up("r", "b", 99),
            "a stale session changes nothing"
        );
        assert!(rooms.set_media_up("r", "b", 2), "both up");

        assert!(rooms.leave("r", "b", 2));
        assert!(
            matches!(a_rx.try_recv(), Ok(ServerMessage::PeerLeft { participant }) if participant == "b")
        );
        assert_eq!(
            rooms.counts(),
            RoomCounts {
                calls: 0,
                participants: 1
            }
        );
    }

    #[test]
    fn rejoining_replaces_the_old_session_and_its_late_leave_is_ignored() {
        let rooms = Rooms::default();
        rooms.create("r");
        let (old_tx, mut old_rx) = outbox();
        let (new_tx, _new_rx) = outbox();
        rooms.join("r", "a", Side::Agent, 1, old_tx).expect("first");
        rooms
            .join("r", "a", Side::Agent, 2, new_tx)
            .expect("reload");
        assert!(matches!(
            old_rx.try_recv(),
            Ok(ServerMessage::Error {
                code: ErrorCode::Replaced,
                ..
            })
        ));
        assert!(
            !rooms.leave("r", "a", 1),
            "the old session no longer holds the id"
        );
        assert_eq!(rooms.counts().participants, 1);
    }

    #[test]
    fn a_call_room_closes_with_its_last_member_and_a_standing_room_stays() {
        let rooms = Rooms::default();
        rooms.create("demo");
        rooms.open("call-1");
        let (a, _ra) = outbox();
        let (b, _rb) = outbox();
        rooms
            .join("call-1", "a", Side::Agent, 1, a)
            .expect("join call");
        rooms
            .join("demo", "b", Side::Customer, 2, b)
            .expect("join demo");
        assert!(rooms.leave("call-1", "a", 1));
        assert!(rooms.leave("demo", "b", 2));
        assert!(!rooms.exists("call-1"), "the call room is gone");
        assert!(rooms.exists("demo"), "the standing room stays");
    }

    #[test]
    fn ending_a_call_tells_everyone_and_removes_the_room() {
        let rooms = Rooms::default();
        rooms.open("call-2");
        let (a, mut ra) = outbox();
        let (b, mut rb) = outbox();
        rooms.join("call-2", "a", Side::Agent, 1, a).expect("a");
        rooms.join("call-2", "b", Side::Customer, 2, b).expect("b");
        let _ = ra.try_recv(); // b joined
        let notice = ServerMessage::Pong;
        let mut gone = rooms.end("call-2", notice.clone());
        gone.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            gone,
            [
                ("a".to_owned(), Side::Agent),
                ("b".to_owned(), Side::Customer)
            ]
        );
        assert_eq!(ra.try_recv(), Ok(notice.clone()));
        assert_eq!(rb.try_recv(), Ok(notice));
        assert!(!rooms.exists("call-2"));
        assert!(!rooms.leave("call-2", "a", 1), "nobody is left to leave");
        assert!(rooms.end("call-2", ServerMessage::Pong).is_empty());
    }
}
