// npm `ws` clients with the `@ezez/utils` codec that authenticate and send
// `echo` events, each after the previous reply on its connection: the load
// tests/bench/callgrind.sh counts instructions under. With several
// connections the server reads several events per wake-up, as under load.
// Usage: node echo-client.mjs ws://host:port/ COUNT [PAYLOAD_BYTES (20)] [CONNECTIONS (1)]
import WebSocket from "ws";
import { serializeToBuffer, unserializeFromBuffer } from "@ezez/utils";

const serialize = (...args) => serializeToBuffer(Buffer, [], ...args);
const [url, count, size, connections] = [
    process.argv[2],
    Number(process.argv[3] ?? 5000),
    Number(process.argv[4] ?? 20),
    Number(process.argv[5] ?? 1),
];
const payload = "x".repeat(size);
let sent = 0;
let open = connections;

function connect() {
    const ws = new WebSocket(url);
    let id = 0;
    ws.on("open", () => ws.send(serialize("ezez-ws::auth", "callgrind", 1)));
    ws.on("message", (data) => {
        const [name] = unserializeFromBuffer(Buffer, [], data);
        if (name === "ezez-ws::auth-rejected" || name === "ezez-ws::error") throw new Error(`refused: ${name}`);
        if (sent === count) return ws.close();
        sent += 1;
        id += 1;
        ws.send(serialize("echo", id, null, payload));
    });
    ws.on("close", () => {
        open -= 1;
        if (open === 0) console.log(`${sent} echoes over ${connections} connection(s)`);
    });
    ws.on("error", (error) => {
        console.error(`echo client: ${error.message}`);
        process.exit(1);
    });
}

for (let i = 0; i < connections; i += 1) connect();
