// The Node.js baseline of the load benchmark (tests/bench/load): what users
// of @ezez/ws-server run today. The npm `ws` server and the real
// `@ezez/utils` codec speak the ezez protocol (auth handshake, numbered
// events, replies); handlers are registered per event name and answer
// through `reply`, the way the @ezez/ws-server docs write them. It serves
// the echo contract and the fan-out one (join a room, publish to it).
// Prints its address on the first line, as the other servers do.

import { WebSocketServer } from "ws";
import { serializeToBuffer, unserializeFromBuffer } from "@ezez/utils";

const serialize = (...args) => serializeToBuffer(Buffer, [], ...args);
const unserialize = (data) => unserializeFromBuffer(Buffer, [], data);

class Server {
    constructor(port) {
        this.handlers = new Map();
        this.rooms = new Map();
        this.wss = new WebSocketServer({ port, host: "127.0.0.1", perMessageDeflate: false });
        this.wss.on("connection", (ws) => this.accept(ws));
    }

    on(name, handler) {
        this.handlers.set(name, handler);
    }

    accept(ws) {
        const client = { ws, authenticated: false, nextId: 0, rooms: new Set() };
        client.send = (name, replyTo, ...args) => ws.send(serialize(name, ++client.nextId, replyTo, ...args));
        ws.on("message", (data) => {
            let message;
            try {
                message = unserialize(data);
            } catch {
                return ws.close(1002, "Malformed message");
            }
            if (!client.authenticated) {
                if (message[0] !== "ezez-ws::auth") return;
                client.authenticated = true;
                return ws.send(serialize("ezez-ws::auth-ok"));
            }
            const [name, id, , ...args] = message;
            const handler = this.handlers.get(name);
            if (!handler) return;
            handler({ client, args, server: this, reply: (...values) => client.send(name, id, ...values) });
        });
        ws.on("close", () => {
            for (const room of client.rooms) this.rooms.get(room)?.delete(client);
        });
    }

    join(client, room) {
        if (!this.rooms.has(room)) this.rooms.set(room, new Set());
        this.rooms.get(room).add(client);
        client.rooms.add(room);
        return this.rooms.get(room).size;
    }

    toRoom(room, name, ...args) {
        for (const member of this.rooms.get(room) ?? []) member.send(name, null, ...args);
    }
}

const server = new Server(0);
server.on("echo", ({ args: [text], reply }) => reply(text));
server.on("echoBytes", ({ args: [data], reply }) => reply(data));
server.on("join", ({ client, args: [room], server, reply }) => reply(server.join(client, room)));
server.on("publish", ({ args: [room, seq, payload], server }) => server.toRoom(room, "published", seq, payload));

server.wss.on("listening", () => {
    console.log(`node ws + @ezez/utils listening on ws://127.0.0.1:${server.wss.address().port}`);
});
