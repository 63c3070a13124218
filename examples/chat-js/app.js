// The chat handler in JavaScript: the same contract as examples/guests/chat.
import * as host from "ws-host:server/host@0.1.0";
import { joined, left, said } from "example:chat/outgoing";

const HISTORY = 1000;
const rooms = new Map();

const nick = (client) => host.getContext(client) ?? "";

export const auth = {
    onAuth(client, key, _request) {
        if (!key) throw "Invalid auth key";
        host.setContext(client, key);
    },
};

export const incoming = {
    join(from, room) {
        const already = host.rooms(from).includes(room);
        host.join(from, room);
        if (!already) joined({ tag: "room-except", val: { room, except: from } }, room, nick(from));
        // A plain loop: `members(room).map(nick)` would pass map's index too.
        const names = [];
        for (const member of host.members(room)) names.push(nick(member));
        return names.sort();
    },
    leave(from, room) {
        if (host.rooms(from).includes(room)) {
            host.leave(from, room);
            left({ tag: "room", val: room }, room, nick(from));
        }
    },
    say(from, room, text) {
        if (!host.rooms(from).includes(room)) return;
        if (!rooms.has(room)) rooms.set(room, { seq: 0, messages: [] });
        const state = rooms.get(room);
        state.seq += 1;
        const message = { room, author: nick(from), text, seq: state.seq };
        if (state.messages.length === HISTORY) state.messages.shift();
        state.messages.push(message);
        said({ tag: "room", val: room }, message);
    },
    history(_from, room, limit) {
        const messages = rooms.get(room)?.messages ?? [];
        return messages.slice(Math.max(0, messages.length - limit));
    },
};

export const disconnected = {
    onDisconnect(client, _code, _reason) {
        const name = nick(client);
        for (const room of host.rooms(client)) {
            host.leave(client, room);
            left({ tag: "room", val: room }, room, name);
        }
    },
};
