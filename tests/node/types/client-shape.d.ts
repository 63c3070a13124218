// The typed surface of @ezez/ws-client's EZEZWebsocketClient<IncomingEvents,
// OutgoingEvents> that application code touches (that package is not on the
// npm registry this project can reach, so its generics are modelled here).
export type TEvents = Record<string, unknown[]>;

export declare class Client<IncomingEvents extends TEvents, OutgoingEvents extends TEvents> {
    send<E extends keyof OutgoingEvents & string>(
        eventName: E,
        args: OutgoingEvents[E],
        onReply?: (...reply: E extends keyof IncomingEvents ? IncomingEvents[E] : never) => void,
    ): void;
    on<E extends keyof IncomingEvents & string>(eventName: E, callback: (...args: IncomingEvents[E]) => void): void;
}
