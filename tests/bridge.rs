//! Every row of the value mapping, both ways: a wire value goes into the
//! fixture guest as its WIT type and comes back out as the reply; values that
//! do not fit get the error reply naming what was expected.

use bytes::Bytes;
use ws_host::codec::{ERROR, Event, Value};
use ws_host_tests::{Client, TestServer, guests, n, obj, s};

async fn roundtrip(client: &mut Client, event: &str, value: Value) -> Vec<Value> {
    let reply = client.request(event, vec![value]).await;
    assert_eq!(reply.name, event, "reply name for {event}: {:?}", reply.args);
    reply.args
}

async fn refused(client: &mut Client, event: &str, value: Value) -> String {
    let reply = client.request(event, vec![value]).await;
    assert_eq!(reply.name, ERROR, "{event} should refuse");
    match reply.args.as_slice() {
        [Value::String(message)] => message.clone(),
        other => panic!("error reply with {other:?}"),
    }
}

fn point(x: f64, y: f64, label: Value) -> Value {
    obj(&[("x", n(x)), ("y", n(y)), ("longLabel", label)])
}

#[tokio::test]
async fn every_kind_round_trips() {
    let server = TestServer::start(guests::FIXTURE).await;
    let mut c = server.client("k").await;
    let same = |v: Value| vec![v];

    assert_eq!(roundtrip(&mut c, "echoBool", Value::Bool(true)).await, same(Value::Bool(true)));
    for (event, value) in [
        ("echoU8", 255.0),
        ("echoS8", -128.0),
        ("echoU16", 65535.0),
        ("echoS16", -32768.0),
        ("echoU32", 4294967295.0),
        ("echoS32", -2147483648.0),
        ("echoF64", 0.1),
        ("echoF32", 0.5),
    ] {
        assert_eq!(roundtrip(&mut c, event, n(value)).await, same(n(value)), "{event}");
    }
    let nan = roundtrip(&mut c, "echoF64", n(f64::NAN)).await;
    assert!(matches!(nan.as_slice(), [Value::Number(x)] if x.is_nan()));
    assert_eq!(roundtrip(&mut c, "echoF64", n(f64::NEG_INFINITY)).await, same(n(f64::NEG_INFINITY)));

    // 64-bit integers come back as bigints, and accept numbers or bigints.
    assert_eq!(
        roundtrip(&mut c, "echoU64", Value::BigInt(u64::MAX.into())).await,
        same(Value::BigInt(u64::MAX.into()))
    );
    assert_eq!(roundtrip(&mut c, "echoU64", n(42.0)).await, same(Value::BigInt(42)));
    assert_eq!(
        roundtrip(&mut c, "echoS64", Value::BigInt(i64::MIN.into())).await,
        same(Value::BigInt(i64::MIN.into()))
    );

    assert_eq!(roundtrip(&mut c, "echoChar", s("\u{1f44b}")).await, same(s("\u{1f44b}")));
    assert_eq!(roundtrip(&mut c, "echoString", s("h\u{e9}llo\0")).await, same(s("h\u{e9}llo\0")));

    let bytes = Value::Bytes(Bytes::from_static(&[0, 1, 255]));
    assert_eq!(roundtrip(&mut c, "echoBytes", bytes.clone()).await, same(bytes.clone()));
    assert_eq!(roundtrip(&mut c, "echoBytes", Value::Array(vec![n(0.0), n(1.0), n(255.0)])).await, same(bytes));
    assert_eq!(roundtrip(&mut c, "echoBytes", Value::Bytes(Bytes::new())).await, same(Value::Bytes(Bytes::new())));
    // A string and bytes in, bytes out (a typed call, as `echoBytes`).
    for data in [Value::Bytes(Bytes::from_static(&[0, 255])), Value::Array(vec![n(0.0), n(255.0)])] {
        let reply = c.request("labelBytes", vec![s("ab"), data]).await;
        assert_eq!(reply.args, vec![Value::Bytes(Bytes::from_static(&[b'a', b'b', 0, 255]))]);
    }

    let points = Value::Array(vec![point(1.0, -2.0, s("a")), point(3.0, 4.0, Value::Null)]);
    assert_eq!(roundtrip(&mut c, "echoList", points.clone()).await, same(points));

    // A tuple return spreads into several reply arguments.
    let tuple = Value::Array(vec![s("a"), n(7.0)]);
    assert_eq!(roundtrip(&mut c, "echoTuple", tuple).await, vec![s("a"), n(7.0)]);

    // Records: camelCase keys; a missing option field is none (null).
    assert_eq!(
        roundtrip(&mut c, "echoRecord", obj(&[("x", n(1.0)), ("y", n(2.0))])).await,
        same(point(1.0, 2.0, Value::Null))
    );

    let circle = obj(&[("tag", s("circle")), ("val", n(1.5))]);
    assert_eq!(roundtrip(&mut c, "echoVariant", circle.clone()).await, same(circle));
    let square = obj(&[("tag", s("square")), ("val", point(1.0, 1.0, s("sq")))]);
    assert_eq!(roundtrip(&mut c, "echoVariant", square.clone()).await, same(square));
    let empty = obj(&[("tag", s("empty"))]);
    assert_eq!(roundtrip(&mut c, "echoVariant", empty.clone()).await, same(empty));

    assert_eq!(roundtrip(&mut c, "echoEnum", s("light-blue")).await, same(s("light-blue")));

    let flags_in = obj(&[("read", Value::Bool(true)), ("execAll", Value::Bool(true))]);
    let flags_out = obj(&[("read", Value::Bool(true)), ("write", Value::Bool(false)), ("execAll", Value::Bool(true))]);
    assert_eq!(roundtrip(&mut c, "echoFlags", flags_in).await, same(flags_out));

    assert_eq!(roundtrip(&mut c, "echoOption", s("x")).await, same(s("x")));
    assert_eq!(roundtrip(&mut c, "echoOption", Value::Null).await, same(Value::Null));
    assert_eq!(roundtrip(&mut c, "echoOption", Value::Undefined).await, same(Value::Null));

    let some_none = obj(&[("tag", s("some")), ("val", Value::Null)]);
    assert_eq!(roundtrip(&mut c, "echoNestedOption", some_none.clone()).await, same(some_none));
    let some_some = obj(&[("tag", s("some")), ("val", n(3.0))]);
    assert_eq!(roundtrip(&mut c, "echoNestedOption", some_some.clone()).await, same(some_some));
    assert_eq!(roundtrip(&mut c, "echoNestedOption", Value::Null).await, same(Value::Null));

    let ok = obj(&[("tag", s("ok")), ("val", s("fine"))]);
    assert_eq!(roundtrip(&mut c, "echoResult", ok.clone()).await, same(ok));
    let err = obj(&[("tag", s("err")), ("val", n(404.0))]);
    assert_eq!(roundtrip(&mut c, "echoResult", err.clone()).await, same(err));

    // Trailing optional arguments may be left out.
    assert_eq!(c.request("pair", vec![s("a")]).await.args, vec![s("a")]);
    assert_eq!(c.request("pair", vec![s("a"), s("b")]).await.args, vec![s("a:b")]);
}

/// An event checked by one version and handled after a swap is checked
/// again by the next from the wire values its WIT values stand for: those
/// must convert to the same WIT values.
#[tokio::test]
async fn converted_arguments_read_back_as_wire_values_convert_the_same() {
    let server = TestServer::start(guests::FIXTURE).await;
    let version = server.handler.version();
    let schema = &version.schema;
    let cases = [
        ("echoString", vec![s("h\u{e9}llo")]),
        ("echoBytes", vec![Value::Bytes(Bytes::from_static(&[0, 255]))]),
        ("echoU64", vec![Value::BigInt(u64::MAX.into())]),
        ("echoList", vec![Value::Array(vec![point(1.0, -2.0, s("a")), point(3.0, 4.0, Value::Null)])]),
        ("echoTuple", vec![Value::Array(vec![s("a"), n(7.0)])]),
        ("echoVariant", vec![obj(&[("tag", s("square")), ("val", point(1.0, 1.0, s("sq")))])]),
        ("echoFlags", vec![obj(&[("read", Value::Bool(true))])]),
        ("echoNestedOption", vec![obj(&[("tag", s("some")), ("val", Value::Null)])]),
        ("echoResult", vec![obj(&[("tag", s("err")), ("val", n(404.0))])]),
        ("pair", vec![s("a")]),
        ("pair", vec![s("a"), s("b")]),
        ("labelBytes", vec![s("a"), Value::Bytes(Bytes::from_static(&[7]))]),
    ];
    for (name, args) in cases {
        let mut event = Event { name: name.into(), id: 1, reply_to: None, args };
        let first = schema.convert(&mut event).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(event.args.is_empty(), "{name}: the arguments moved into the call");
        assert_eq!(schema.event(first.event).name.wire, name, "the event they were checked for");
        event.args = schema.wire_args(&first);
        let again = schema.convert(&mut event).unwrap_or_else(|e| panic!("{name} again: {e}"));
        assert_eq!(again, first, "{name}");
    }
}

#[tokio::test]
async fn values_that_do_not_fit_are_refused_with_what_was_expected() {
    let server = TestServer::start(guests::FIXTURE).await;
    let mut c = server.client("k").await;
    let cases = [
        ("echoBool", n(1.0), "expected boolean, got number"),
        ("echoU8", n(256.0), "expected integer in 0..=255 (u8), got 256 (out of range)"),
        ("echoU8", n(-1.0), "expected integer in 0..=255 (u8), got -1 (out of range)"),
        ("echoS32", n(1.5), "expected integer in -2147483648..=2147483647 (s32), got number 1.5"),
        ("echoU64", Value::BigInt(-1), "expected 64-bit unsigned integer (u64), got -1 (out of range)"),
        ("echoU64", n(1e300), "expected 64-bit unsigned integer (u64), got number 1e+300"),
        ("echoF64", s("1"), "expected number, got string"),
        ("echoChar", s("ab"), "expected string of one character (char), got string of 2 characters"),
        ("echoString", Value::Null, "expected string, got null"),
        ("echoBytes", Value::Array(vec![n(256.0)]), "[0]: expected integer in 0..=255 (u8), got 256 (out of range)"),
        ("echoBytes", s("ab"), "expected bytes, got string"),
        (
            "echoList",
            Value::Array(vec![obj(&[("x", n(1.0))])]),
            "[0].y: expected integer in -2147483648..=2147483647 (s32), got nothing (missing field)",
        ),
        ("echoTuple", Value::Array(vec![s("a")]), "expected array of 2 items, got array of 1 items"),
        ("echoRecord", obj(&[("x", n(1.0)), ("y", n(2.0)), ("z", n(3.0))]), "z: expected no such field, got a value"),
        (
            "echoRecord",
            obj(&[("x", n(1.0)), ("y", s("2"))]),
            "y: expected integer in -2147483648..=2147483647 (s32), got string",
        ),
        (
            "echoVariant",
            obj(&[("tag", s("hexagon"))]),
            "expected {tag, val} with tag one of \"circle\", \"square\", \"empty\", got tag \"hexagon\"",
        ),
        ("echoVariant", obj(&[("tag", s("circle"))]), "val: expected number, got nothing"),
        ("echoEnum", s("blue"), "expected one of \"red\", \"light-blue\", got \"blue\""),
        ("echoFlags", obj(&[("delete", Value::Bool(true))]), "delete: expected no such flag, got a value"),
        ("echoOption", n(1.0), "expected string or null, got number"),
        ("echoResult", obj(&[("tag", s("maybe"))]), "expected {tag: \"ok\" | \"err\", val}, got tag \"maybe\""),
    ];
    for (event, value, expected) in cases {
        let message = refused(&mut c, event, value).await;
        assert_eq!(message, format!("{event}: argument 1 (v): {expected}"));
    }
}
