// A deliberately wrong call: `say` takes (room: string, text: string).
import type { IncomingEvents, OutgoingEvents } from "./chat-events";
import type { Client } from "./client-shape";

declare const client: Client<IncomingEvents, OutgoingEvents>;

client.send("say", ["lobby", 42]);
