// One npm `ws` client with the `@ezez/utils` codec that authenticates and
// sends `echo` events one after the other, each after the previous reply:
// the load tests/bench/callgrind.sh counts instructions under.
// Usage: node echo-client.mjs ws://host:port/ COUNT [PAYLOAD_BYTES (20)]
import WebSocket from "ws";
import { serializeToBuffer, unserializeFromBuffer } from "@ezez/utils";

const serialize = (...args) => serializeToBuffer(Buffer, [], ...args);
const [url, count, size] = [process.argv[2], Number(process.argv[3] ?? 5000), Number(process.argv[4] ?? 20)];
const payload = "x".repeat(size);
const ws = new WebSocket(url);
let sent = 0;
ws.on("open", () => ws.send(serialize("ezez-ws::auth", "callgrind", 1)));
ws.on("message", (data) => {
    const [name] = unserializeFromBuffer(Buffer, [], data);
    if (name === "ezez-ws::auth-rejected" || name === "ezez-ws::error") throw new Error(`refused: ${name}`);
    if (sent === count) return ws.close();
    sent += 1;
    ws.send(serialize("echo", sent, null, payload));
});
ws.on("close", () => console.log(`${sent} echoes`));
ws.on("error", (error) => {
    console.error(`echo client: ${error.message}`);
    process.exit(1);
});
