// npm `ws` clients with the `@ezez/utils` codec that authenticate and send
// one kind of request, each after the previous answer on its connection: the
// load tests/bench/callgrind.sh counts instructions under. With several
// connections the server reads several events per wake-up, as under load.
// Usage: node echo-client.mjs ws://host:port/ COUNT [PAYLOAD_BYTES (20)] [CONNECTIONS (1)] [REQUEST (echo)]
// REQUEST, and the handler that answers it:
//   echo        echo(text) -> text                         the echo example, or the native server
//   echoBytes   echoBytes(bytes) -> bytes                  the echo example, or the native server
//   echoF64     echoF64(1.5) -> 1.5                        the fixture handler (one number)
//   echoRecord  echoRecord({x, y, longLabel: text}) -> it  the fixture handler (a record)
//   say         say(room, text), answered by `said`        the chat example (each connection in a room of its own)
//   blast       blast(100, PAYLOAD_BYTES), answered by     the fixture handler (an outgoing event of bytes, sent
//               100 `blob`s of that many bytes             to every client: use one connection)
import WebSocket from "ws";
import { serializeToBuffer, unserializeFromBuffer } from "@ezez/utils";

const serialize = (...args) => serializeToBuffer(Buffer, [], ...args);
const [url, count, size, connections, request] = [
    process.argv[2],
    Number(process.argv[3] ?? 5000),
    Number(process.argv[4] ?? 20),
    Number(process.argv[5] ?? 1),
    process.argv[6] ?? "echo",
];
const payload = "x".repeat(size);
/** How many `blob`s one `blast` asks for. */
const BLOBS = 100;

/** Per request: its arguments on connection `n`, what answers it, and what is sent once first. */
const requests = {
    echo: { args: () => [payload] },
    echoBytes: { args: () => [Buffer.from(payload)] },
    echoF64: { args: () => [1.5] },
    echoRecord: { args: () => [{ x: 1, y: -2, longLabel: payload }] },
    say: { args: (n) => [`room-${n}`, payload], answer: "said", first: (n) => ["join", `room-${n}`] },
    blast: { args: () => [BLOBS, size], answer: "blob", answers: BLOBS },
};
const kind = requests[request];
if (!kind) {
    console.error(`echo client: unknown request ${request} (one of ${Object.keys(requests).join(", ")})`);
    process.exit(2);
}

let sent = 0;
let open = connections;

function connect(n) {
    const ws = new WebSocket(url);
    let id = 0;
    // Answers still to come to the request in flight (one, but for `blast`).
    let awaited = 0;
    const send = (name, ...args) => ws.send(serialize(name, ++id, null, ...args));
    ws.on("open", () => ws.send(serialize("ezez-ws::auth", `callgrind-${n}`, 1)));
    const next = () => {
        if (sent === count) return ws.close();
        sent += 1;
        awaited = kind.answers ?? 1;
        send(request, ...kind.args(n));
    };
    ws.on("message", (data) => {
        const [name, , replyTo] = unserializeFromBuffer(Buffer, [], data);
        if (name === "ezez-ws::auth-rejected" || name === "ezez-ws::error") throw new Error(`refused: ${name}`);
        if (name === "ezez-ws::auth-ok") return kind.first ? send(...kind.first(n)) : next();
        const answered = kind.answer ? name === kind.answer : replyTo === id;
        // The reply to what was sent first (id 1) starts the loop.
        if (answered) awaited -= 1;
        if ((answered && awaited === 0) || (kind.first && replyTo === 1)) next();
    });
    ws.on("close", () => {
        open -= 1;
        if (open === 0) console.log(`${sent} ${request} requests over ${connections} connection(s)`);
    });
    ws.on("error", (error) => {
        console.error(`echo client: ${error.message}`);
        process.exit(1);
    });
}

for (let n = 0; n < connections; n += 1) connect(n);
