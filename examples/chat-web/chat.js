// A browser client for the chat example. It speaks the ezez protocol in its
// JSON text form (`[name, eventId, replyTo, ...args]` in text frames), so it
// needs no library; it reconnects every second after the connection drops,
// as @ezez/ws-client does, unless the server rejected it.

const params = new URLSearchParams(location.search);
const nick = params.get("nick") || `guest${Math.floor(Math.random() * 1000)}`;
const room = params.get("room") || "lobby";
document.getElementById("nick").textContent = nick;
document.getElementById("room").textContent = room;

const log = document.getElementById("log");
const status = document.getElementById("status");

function show(html, notice = false) {
    const item = document.createElement("li");
    item.innerHTML = html;
    if (notice) item.className = "notice";
    log.append(item);
}

const escape = (text) => text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

let socket;
let nextId = 0;
let rejected = false;

function connect() {
    socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/chat`);
    const send = (name, ...args) => socket.send(JSON.stringify([name, ++nextId, null, ...args]));
    socket.onopen = () => socket.send(JSON.stringify(["ezez-ws::auth", nick, 1]));
    socket.onmessage = ({ data }) => {
        const [name, , replyTo, ...args] = JSON.parse(data);
        switch (name) {
            case "ezez-ws::auth-ok":
                status.textContent = "online";
                status.className = "online";
                send("join", room);
                break;
            case "ezez-ws::auth-rejected":
                rejected = true;
                show(`Rejected: ${escape(args[0] ?? "")}`, true);
                break;
            case "join":
                if (replyTo !== null) show(`In ${escape(room)}: ${args[0].map(escape).join(", ")}`, true);
                break;
            case "joined":
                show(`${escape(args[1])} joined`, true);
                break;
            case "left":
                show(`${escape(args[1])} left`, true);
                break;
            case "said": {
                const message = args[0];
                show(`<b>${escape(message.author)}</b>${escape(message.text)}`);
                break;
            }
            case "ezez-ws::error":
                show(`Error: ${escape(args[0])}`, true);
                break;
        }
    };
    socket.onclose = () => {
        status.textContent = "offline";
        status.className = "";
        if (!rejected) setTimeout(connect, 1000);
    };
    window.chat = { say: (text) => send("say", room, text) };
}

document.getElementById("say").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = event.target.elements.text;
    window.chat.say(input.value);
    input.value = "";
});

connect();
