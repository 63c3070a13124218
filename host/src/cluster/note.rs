//! What nodes publish to each other: a registry [`Update`], a heartbeat or a
//! goodbye, stamped with the sender's node and sequence number. Written in
//! the ezez binary framing the clients already use (lossless for every
//! wire value, byte buffers included), as one list of values:
//! `[VERSION, node, seq, kind, ...fields]`. Event arguments come last and
//! flat, since only a whole element can be a byte buffer.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;

use crate::codec::{self, OutgoingEvent, Value};
use crate::registry::{ClientId, ClientState, NodeId, Target, Update};

/// Bumped when the layout changes; other versions are refused, not misread.
const VERSION: f64 = 1.0;

/// One thing a node tells the others.
#[derive(Debug, Clone)]
pub enum Note {
    Update(Update),
    /// "I am alive" (once a second): a node that stops sending is forgotten.
    Heartbeat,
    /// "I am leaving": forget my clients now.
    Bye,
}

/// A note as received: who sent it, its place in the sender's sequence.
#[derive(Debug)]
pub struct Received {
    pub node: NodeId,
    pub seq: u64,
    pub note: Note,
}

/// Why a published message could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable cluster message: {0}")]
pub struct NoteError(String);

pub fn encode(node: NodeId, seq: u64, note: &Note) -> Vec<u8> {
    let mut values = vec![Value::Number(VERSION), Value::Number(f64::from(node)), Value::BigInt(i128::from(seq))];
    let kind = |values: &mut Vec<Value>, kind: &str| values.push(Value::String(kind.into()));
    match note {
        Note::Heartbeat => kind(&mut values, "heartbeat"),
        Note::Bye => kind(&mut values, "bye"),
        Note::Update(Update::Client(client)) => {
            kind(&mut values, "client");
            values.push(client_value(client));
        }
        Note::Update(Update::Gone(id)) => {
            kind(&mut values, "gone");
            values.push(id_value(*id));
        }
        Note::Update(Update::Snapshot { clients, hello }) => {
            kind(&mut values, if *hello { "hello" } else { "snapshot" });
            values.push(Value::Array(clients.iter().map(client_value).collect()));
        }
        Note::Update(Update::Disconnect { id, code, reason }) => {
            kind(&mut values, "disconnect");
            values.extend([id_value(*id), Value::Number(f64::from(*code)), Value::String(reason.clone())]);
        }
        Note::Update(Update::Deliver { target, event }) => {
            kind(&mut values, "deliver");
            values.push(target_value(target));
            values.push(Value::String(event.name().into()));
            values.push(event.reply_to().map_or(Value::Null, id_value));
            values.extend(event.args().iter().cloned());
        }
    }
    codec::encode_values(&values)
}

pub fn decode(bytes: &[u8]) -> Result<Received, NoteError> {
    let values = codec::decode_values(&Bytes::copy_from_slice(bytes)).map_err(|e| NoteError(e.to_string()))?;
    let mut values = values.into_iter();
    let mut next = || values.next().ok_or_else(|| NoteError("too few elements".into()));
    match next()? {
        Value::Number(VERSION) => {}
        other => return Err(NoteError(format!("layout version {other:?}, this node reads {VERSION}"))),
    }
    let node = match next()? {
        Value::Number(n) if n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&n) => n as NodeId,
        other => return Err(NoteError(format!("node {other:?}"))),
    };
    let seq = id(next()?)?;
    let Value::String(kind) = next()? else { return Err(NoteError("no kind".into())) };
    let note = match kind.as_str() {
        "heartbeat" => Note::Heartbeat,
        "bye" => Note::Bye,
        "client" => Note::Update(Update::Client(client(next()?)?)),
        "gone" => Note::Update(Update::Gone(id(next()?)?)),
        "hello" | "snapshot" => {
            let Value::Array(clients) = next()? else { return Err(NoteError("snapshot without clients".into())) };
            let clients = clients.into_iter().map(client).collect::<Result<_, _>>()?;
            Note::Update(Update::Snapshot { clients, hello: kind == "hello" })
        }
        "disconnect" => {
            let id = id(next()?)?;
            let (Value::Number(code), Value::String(reason)) = (next()?, next()?) else {
                return Err(NoteError("disconnect without code and reason".into()));
            };
            if code.fract() != 0.0 || !(0.0..=f64::from(u16::MAX)).contains(&code) {
                return Err(NoteError(format!("close code {code}")));
            }
            Note::Update(Update::Disconnect { id, code: code as u16, reason })
        }
        "deliver" => {
            let target = target(next()?)?;
            let Value::String(name) = next()? else { return Err(NoteError("event without a name".into())) };
            let reply_to = match next()? {
                Value::Null => None,
                value => Some(id(value)?),
            };
            let args = values.collect();
            Note::Update(Update::Deliver { target, event: Arc::new(OutgoingEvent::new(name, reply_to, args)) })
        }
        other => return Err(NoteError(format!("unknown kind {other:?}"))),
    };
    Ok(Received { node, seq, note })
}

fn id_value(id: ClientId) -> Value {
    Value::BigInt(i128::from(id))
}

fn id(value: Value) -> Result<u64, NoteError> {
    match value {
        Value::BigInt(n) => u64::try_from(n).map_err(|_| NoteError(format!("id {n} out of range"))),
        other => Err(NoteError(format!("expected an id, got {other:?}"))),
    }
}

fn client_value(client: &ClientState) -> Value {
    Value::Array(vec![
        id_value(client.id),
        Value::Bool(client.authenticated),
        client.context.clone().map_or(Value::Null, Value::String),
        Value::Array(client.rooms.iter().cloned().map(Value::String).collect()),
    ])
}

fn client(value: Value) -> Result<ClientState, NoteError> {
    let bad = || NoteError("malformed client".into());
    let Value::Array(fields) = value else { return Err(bad()) };
    let [id_field, Value::Bool(authenticated), context, Value::Array(rooms)] =
        <[Value; 4]>::try_from(fields).map_err(|_| bad())?
    else {
        return Err(bad());
    };
    let context = match context {
        Value::Null => None,
        Value::String(text) => Some(text),
        _ => return Err(bad()),
    };
    let rooms = rooms
        .into_iter()
        .map(|room| match room {
            Value::String(room) => Ok(room),
            _ => Err(bad()),
        })
        .collect::<Result<BTreeSet<_>, _>>()?;
    Ok(ClientState { id: id(id_field)?, authenticated, context, rooms })
}

fn target_value(target: &Target) -> Value {
    let kind = |k: &str| Value::String(k.into());
    Value::Array(match target {
        Target::Client(id) => vec![kind("client"), id_value(*id)],
        Target::Clients(ids) => vec![kind("clients"), Value::Array(ids.iter().copied().map(id_value).collect())],
        Target::All => vec![kind("all")],
        Target::AllExcept(id) => vec![kind("all-except"), id_value(*id)],
        Target::Room(room) => vec![kind("room"), Value::String(room.clone())],
        Target::RoomExcept { room, except } => {
            vec![kind("room-except"), Value::String(room.clone()), id_value(*except)]
        }
    })
}

fn target(value: Value) -> Result<Target, NoteError> {
    let bad = || NoteError("malformed target".into());
    let Value::Array(fields) = value else { return Err(bad()) };
    let mut fields = fields.into_iter();
    let Some(Value::String(kind)) = fields.next() else { return Err(bad()) };
    let mut next = || fields.next().ok_or_else(bad);
    Ok(match kind.as_str() {
        "client" => Target::Client(id(next()?)?),
        "clients" => {
            let Value::Array(ids) = next()? else { return Err(bad()) };
            Target::Clients(ids.into_iter().map(id).collect::<Result<_, _>>()?)
        }
        "all" => Target::All,
        "all-except" => Target::AllExcept(id(next()?)?),
        "room" => match next()? {
            Value::String(room) => Target::Room(room),
            _ => return Err(bad()),
        },
        "room-except" => match (next()?, next()?) {
            (Value::String(room), except) => Target::RoomExcept { room, except: id(except)? },
            _ => return Err(bad()),
        },
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(note: Note) -> Note {
        let received = decode(&encode(7, 42, &note)).unwrap();
        assert_eq!((received.node, received.seq), (7, 42));
        received.note
    }

    #[test]
    fn every_note_survives_the_trip() {
        let client = ClientState {
            id: (7 << 40) | 3,
            authenticated: true,
            context: Some("ada".into()),
            rooms: ["a".to_owned(), "b".to_owned()].into(),
        };
        let Note::Update(Update::Client(back)) = round_trip(Note::Update(Update::Client(client.clone()))) else {
            panic!()
        };
        assert_eq!(back, client);
        let Note::Update(Update::Snapshot { clients, hello: true }) =
            round_trip(Note::Update(Update::Snapshot { clients: vec![client.clone()], hello: true }))
        else {
            panic!()
        };
        assert_eq!(clients, vec![client]);
        assert!(matches!(round_trip(Note::Heartbeat), Note::Heartbeat));
        assert!(matches!(round_trip(Note::Bye), Note::Bye));
        assert!(matches!(round_trip(Note::Update(Update::Gone(9))), Note::Update(Update::Gone(9))));
        let disconnect = Update::Disconnect { id: 9, code: 4000, reason: "bye".into() };
        let Note::Update(Update::Disconnect { id: 9, code: 4000, reason }) = round_trip(Note::Update(disconnect))
        else {
            panic!()
        };
        assert_eq!(reason, "bye");
    }

    #[test]
    fn deliveries_keep_every_target_and_argument() {
        let args = vec![Value::Bytes(Bytes::from_static(b"\x00\xff")), Value::BigInt(-5), "x".into(), Value::Undefined];
        let targets = [
            Target::Client(1),
            Target::Clients(vec![1, 2]),
            Target::All,
            Target::AllExcept(3),
            Target::Room("r".into()),
            Target::RoomExcept { room: "r".into(), except: 4 },
        ];
        for target in targets {
            let event = Arc::new(OutgoingEvent::new("said", None, args.clone()));
            let Note::Update(Update::Deliver { target: back, event: back_event }) =
                round_trip(Note::Update(Update::Deliver { target: target.clone(), event: event.clone() }))
            else {
                panic!()
            };
            assert_eq!(back, target);
            assert_eq!(back_event.frame(codec::Codec::Binary, 1), event.frame(codec::Codec::Binary, 1));
        }
    }

    #[test]
    fn garbage_and_other_versions_are_refused() {
        assert!(decode(b"hello").is_err());
        let other_version = codec::encode_values(&[Value::Number(2.0), Value::Number(1.0)]);
        assert!(decode(&other_version).unwrap_err().to_string().contains("layout version"));
        // A close code that is not a 16-bit number is refused, not cut to one.
        for code in [70_000.0, 1000.5, -1.0, f64::NAN] {
            let note = [
                1.0.into(),
                1.0.into(),
                Value::BigInt(1),
                "disconnect".into(),
                Value::BigInt(2),
                code.into(),
                "x".into(),
            ];
            let error = decode(&codec::encode_values(&note)).unwrap_err().to_string();
            assert!(error.contains("close code"), "{code}: {error}");
        }
    }
}
