// Uses the types `ws-host types chat.wasm` printed: must compile.
import type { IncomingEvents, OutgoingEvents } from "./chat-events";
import type { Client } from "./client-shape";

declare const client: Client<IncomingEvents, OutgoingEvents>;

client.send("join", ["lobby"], (nicks) => {
    const names: string[] = nicks;
    console.log(names.join(", "));
});
client.send("say", ["lobby", "hello"]);
client.send("history", ["lobby", 10], (messages) => {
    for (const message of messages) {
        const line: string = `${message.seq} ${message.author}: ${message.text}`;
        console.log(line);
    }
});
client.on("said", (message) => {
    const seq: number = message.seq;
    console.log(seq, message.room);
});
client.on("joined", (room, nick) => console.log(room.toUpperCase(), nick.length));
client.on("ezez-ws::error", (text) => console.error(text));
