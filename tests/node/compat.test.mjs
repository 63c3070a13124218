// Compatibility suite: the real npm `ws` client and `@ezez/utils` codec (the
// reference implementation of the wire format) against `ws-host run`.
//
// Needs WS_HOST_BIN and GUEST_CHAT / GUEST_CHAT_PY / GUEST_CHAT_JS / GUEST_ECHO / GUEST_FIXTURE (the test
// command, tests/run.sh, sets them).
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { WebSocket } from "ws";
import { serializeToBuffer, unserializeFromBuffer } from "@ezez/utils";

import { corpus, jsonCorpus } from "./make-corpus.mjs";

const serialize = (...args) => serializeToBuffer(Buffer, [], ...args);
const unserialize = (data) => unserializeFromBuffer(Buffer, [], Buffer.from(data));

function env(name) {
    const value = process.env[name];
    assert.ok(value, `${name} must be set (run the suite through tests/run.sh)`);
    return value;
}

/** Starts `ws-host run <wasm> --port 0 <flags>`; resolves once it listens. */
async function startServer(wasm, ...flags) {
    const child = spawn(env("WS_HOST_BIN"), ["run", wasm, "--port", "0", ...flags], {
        stdio: ["ignore", "pipe", "inherit"],
        env: { ...process.env, RUST_LOG: "warn" },
    });
    const lines = createInterface({ input: child.stdout });
    const line = await new Promise((resolve, reject) => {
        lines.once("line", resolve);
        child.once("exit", (code) => reject(new Error(`ws-host exited with ${code} before listening`)));
    });
    const url = line.replace("ws-host listening on ", "");
    assert.match(url, /^ws:\/\/127\.0\.0\.1:\d+$/);
    return {
        url,
        stop: () => new Promise((resolve) => {
            child.once("exit", resolve);
            child.kill("SIGTERM");
        }),
    };
}

/** The ezez binary framing, as @ezez/ws-client speaks it. */
const BINARY = {
    encode: (...values) => serialize(...values),
    decode(data, isBinary) {
        assert.ok(isBinary, "ws-host must answer binary frames with binary frames");
        return unserialize(data);
    },
};

/** JSON arrays in text frames, as a page without a client library speaks. */
const JSON_TEXT = {
    encode: (...values) => JSON.stringify(values),
    decode(data, isBinary) {
        assert.ok(!isBinary, "ws-host must answer text frames with text frames");
        const text = data.toString();
        const message = JSON.parse(text);
        // Kept to compare byte for byte; not enumerable, so deepEqual ignores it.
        Object.defineProperty(message, "text", { value: text });
        return message;
    },
};

/** A client that speaks the protocol as @ezez/ws-client does (or in JSON text frames). */
class Client {
    static async open(url, options = {}, codec = BINARY) {
        const ws = new WebSocket(url, options);
        ws.binaryType = "arraybuffer";
        const client = new Client(ws, codec);
        await new Promise((resolve, reject) => {
            ws.once("open", resolve);
            ws.once("error", reject);
        });
        return client;
    }

    constructor(ws, codec) {
        this.ws = ws;
        this.codec = codec;
        this.id = 0;
        this.inbox = [];
        this.waiters = [];
        this.closed = new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
        ws.on("message", (data, isBinary) => {
            this.inbox.push(codec.decode(data, isBinary));
            this.flush();
        });
    }

    flush() {
        for (const waiter of [...this.waiters]) {
            const index = this.inbox.findIndex(waiter.match);
            if (index !== -1) {
                const [message] = this.inbox.splice(index, 1);
                this.waiters.splice(this.waiters.indexOf(waiter), 1);
                waiter.resolve(message);
            }
        }
    }

    next(match, what) {
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 10_000);
            this.waiters.push({ match, resolve: (m) => { clearTimeout(timer); resolve(m); } });
            this.flush();
        });
    }

    async auth(key) {
        this.ws.send(this.codec.encode("ezez-ws::auth", key, 1));
        return this.next((m) => String(m[0]).startsWith("ezez-ws::auth-"), "the auth answer");
    }

    send(name, ...args) {
        const id = ++this.id;
        this.ws.send(this.codec.encode(name, id, null, ...args));
        return id;
    }

    /** Sends an event and resolves with the reply to it. */
    request(name, ...args) {
        const id = this.send(name, ...args);
        return this.next((m) => m[2] === id, `the reply to ${name}`);
    }

    /** The next event that is not a reply. */
    event() {
        return this.next((m) => m[2] === null && !String(m[0]).startsWith("ezez-ws::"), "an event");
    }

    close() {
        this.ws.close();
        return this.closed;
    }
}

// The chat suite runs against every build of the chat contract.
for (const [language, build] of [["Rust", "GUEST_CHAT"], ["Python", "GUEST_CHAT_PY"], ["JavaScript", "GUEST_CHAT_JS"]]) {
    describe(`chat example (${language})`, () => {
        let server;
        before(async () => { server = await startServer(env(build)); });
        after(async () => { await server.stop(); });

        test("auth handshake: accepted, and rejected with the reference's reason", async () => {
            const ann = await Client.open(server.url);
            assert.deepEqual(await ann.auth("ann"), ["ezez-ws::auth-ok"]);
            const nobody = await Client.open(server.url);
            assert.deepEqual(await nobody.auth(""), ["ezez-ws::auth-rejected", "Invalid auth key"]);
            assert.equal((await nobody.closed).code, 1008);
            await ann.close();
        });

        test("a version mismatch is rejected", async () => {
            const client = await Client.open(server.url);
            client.ws.send(serialize("ezez-ws::auth", "ann", 2));
            const answer = await client.next(() => true, "the rejection");
            assert.deepEqual(answer, ["ezez-ws::auth-rejected", "Protocol version mismatch, wanted 1, got 2"]);
        });

        test("replies, broadcast to a room, records and history", async () => {
            const ann = await Client.open(server.url);
            const bob = await Client.open(server.url);
            await ann.auth("ann");
            await bob.auth("bob");

            const joinAnn = await ann.request("join", "room-1");
            assert.deepEqual(joinAnn, ["join", 1, 1, ["ann"]]);
            assert.deepEqual((await bob.request("join", "room-1")).slice(3), [["ann", "bob"]]);
            const joined = await ann.event();
            assert.deepEqual([joined[0], ...joined.slice(3)], ["joined", "room-1", "bob"]);

            ann.send("say", "room-1", "hello \u{1f44b}");
            const expected = { room: "room-1", author: "ann", text: "hello \u{1f44b}", seq: 1 };
            for (const client of [ann, bob]) {
                const [name, id, replyTo, message] = await client.event();
                assert.equal(name, "said");
                assert.equal(typeof id, "number");
                assert.equal(replyTo, null);
                assert.deepEqual(message, expected);
            }
            const [, , , history] = await bob.request("history", "room-1", 5);
            assert.deepEqual(history, [expected]);

            await bob.close();
            const left = await ann.event();
            assert.deepEqual([left[0], ...left.slice(3)], ["left", "room-1", "bob"]);
            await ann.close();
        });

        test("an argument of the wrong type gets an error reply, not a timeout", async () => {
            const client = await Client.open(server.url);
            await client.auth("typo");
            const reply = await client.request("history", "room-1", "ten");
            assert.deepEqual(reply.slice(0, 1).concat(reply.slice(3)), [
                "ezez-ws::error",
                "history: argument 2 (limit): expected integer in 0..=4294967295 (u32), got string",
            ]);
            assert.deepEqual((await client.request("join", "still-connected")).slice(3), [["typo"]]);
            await client.close();
        });
    });
}

const point = { x: 1, y: -2, longLabel: "p" };
/** Values each `echo*` event of the fixture hands back as they came. */
const same = [
    ["echoBool", true],
    ["echoU8", 255],
    ["echoS8", -128],
    ["echoU16", 65535],
    ["echoS16", -32768],
    ["echoU32", 4294967295],
    ["echoS32", -2147483648],
    ["echoU64", 18446744073709551615n],
    ["echoS64", -9223372036854775808n],
    ["echoF32", 0.5],
    ["echoF64", 0.1 + 0.2],
    ["echoF64", -Infinity],
    ["echoF64", 1e20],
    ["echoF64", 123456789012345680000],
    ["echoF64", 5e-324],
    ["echoChar", "\u{1f44b}"],
    ["echoString", "h\u00e9llo \0 \"quotes\" s:tagged"],
    ["echoList", [point, { x: 0, y: 0, longLabel: null }]],
    ["echoRecord", point],
    ["echoVariant", { tag: "circle", val: 2.5 }],
    ["echoVariant", { tag: "square", val: point }],
    ["echoVariant", { tag: "empty" }],
    ["echoEnum", "light-blue"],
    ["echoFlags", { read: true, write: false, execAll: true }],
    ["echoOption", "x"],
    ["echoOption", null],
    ["echoNestedOption", { tag: "some", val: null }],
    ["echoNestedOption", { tag: "some", val: 7 }],
    ["echoResult", { tag: "ok", val: "fine" }],
    ["echoResult", { tag: "err", val: 404 }],
];

/**
 * Starts the fixture handler before the enclosing describe's tests and
 * authenticates one client speaking `codec`; stops both after them. The
 * client is `session.client` once the tests run.
 */
function fixtureSession(codec) {
    const session = {};
    before(async () => {
        session.server = await startServer(env("GUEST_FIXTURE"));
        session.client = await Client.open(session.server.url, {}, codec);
        assert.deepEqual(await session.client.auth("node"), ["ezez-ws::auth-ok"]);
    });
    after(async () => {
        await session.client.close();
        await session.server.stop();
    });
    return session;
}

describe("every mapped kind of value (fixture handler)", () => {
    const session = fixtureSession(BINARY);

    for (const [event, value] of same) {
        test(`${event} ${typeof value === "bigint" ? `${value}n` : JSON.stringify(value)}`, async () => {
            const [name, , , ...args] = await session.client.request(event, value);
            assert.equal(name, event);
            assert.deepEqual(args, [value]);
        });
    }

    test("NaN survives", async () => {
        const [, , , value] = await session.client.request("echoF64", NaN);
        assert.ok(Number.isNaN(value));
    });

    test("64-bit integers accept numbers and come back as bigints", async () => {
        assert.deepEqual((await session.client.request("echoU64", 42)).slice(3), [42n]);
    });

    test("a tuple is an array, and a returned tuple spreads into the reply", async () => {
        assert.deepEqual((await session.client.request("echoTuple", ["a", 7])).slice(3), ["a", 7]);
    });

    test("binary arguments travel as Buffers", async () => {
        const [name, , , data] = await session.client.request("echoBytes", Buffer.from([0, 1, 2, 255]));
        assert.equal(name, "echoBytes");
        assert.ok(data instanceof Uint8Array);
        assert.deepEqual([...data], [0, 1, 2, 255]);
    });

    test("undefined is none, and trailing optional arguments may be left out", async () => {
        assert.deepEqual((await session.client.request("echoOption", undefined)).slice(3), [null]);
        assert.deepEqual((await session.client.request("pair", "a")).slice(3), ["a"]);
    });
});

describe("every mapped kind of value in JSON text frames (fixture handler)", () => {
    const session = fixtureSession(JSON_TEXT);

    // JSON carries all of them but the bigints and the infinities.
    const carried = same.filter(([, value]) => typeof value !== "bigint" && value !== -Infinity);
    for (const [event, value] of carried) {
        test(`${event} ${JSON.stringify(value)}`, async () => {
            const reply = await session.client.request(event, value);
            assert.deepEqual(reply.slice(3), [value]);
            assert.equal(reply.text, JSON.stringify(reply), "written as JSON.stringify writes it");
        });
    }

    test("64-bit integers stay exact both ways", async () => {
        // JSON.stringify cannot write a bigint: the frame is written by hand.
        const id = ++session.client.id;
        session.client.ws.send(`["echoU64",${id},null,18446744073709551615]`);
        const reply = await session.client.next((m) => m[2] === id, "the reply to echoU64");
        assert.equal(reply.text, `["echoU64",${reply[1]},${id},18446744073709551615]`);
    });

    test("bytes are arrays of numbers", async () => {
        assert.deepEqual((await session.client.request("echoBytes", [0, 1, 2, 255])).slice(3), [[0, 1, 2, 255]]);
    });
});

describe("echo example", () => {
    test("text and bytes", async () => {
        const server = await startServer(env("GUEST_ECHO"));
        const client = await Client.open(server.url);
        assert.deepEqual(await client.auth("whatever"), ["ezez-ws::auth-ok"]);
        assert.deepEqual(await client.request("echo", "hi"), ["echo", 1, 1, "hi"]);
        const [, , , bytes] = await client.request("echoBytes", Buffer.from("bin\0ary"));
        assert.equal(Buffer.from(bytes).toString(), "bin\0ary");
        await client.close();
        await server.stop();
    });
});

describe("pings", () => {
    test("an idle client that answers them stays; one that does not is closed with 1001", async () => {
        const server = await startServer(env("GUEST_ECHO"), "--ping-interval-ms", "50");
        const [idle, mute] = [await Client.open(server.url), await Client.open(server.url, { autoPong: false })];
        for (const client of [idle, mute]) {
            assert.deepEqual(await client.auth("k"), ["ezez-ws::auth-ok"]);
        }
        // `ws` answers each ping as a browser does; the idle client sends nothing else.
        let pings = 0;
        await new Promise((resolve) => idle.ws.on("ping", () => ++pings === 5 && resolve()));
        assert.deepEqual(await mute.closed, { code: 1001, reason: "No answer to pings" });
        assert.deepEqual(await idle.request("echo", "still here"), ["echo", 1, 1, "still here"]);
        await idle.close();
        await server.stop();
    });
});

test("the committed codec corpus is what @ezez/utils produces today", () => {
    const committed = readFileSync(new URL("../corpus/ezez-frames.hex", import.meta.url), "utf8").trim().split("\n");
    const fresh = corpus.map((args) => serialize(...args).toString("hex"));
    assert.deepEqual(committed, fresh);
});

test("the committed JSON corpus is what JSON.stringify writes today", () => {
    const committed = readFileSync(new URL("../corpus/json-frames.txt", import.meta.url), "utf8").trim().split("\n");
    assert.deepEqual(committed, jsonCorpus);
});
