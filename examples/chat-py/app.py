"""The chat handler in Python: the same contract as examples/guests/chat."""

from componentize_py_types import Err

from wit_world import exports
from wit_world.imports import host
from wit_world.imports.outgoing import joined, left, said
from wit_world.imports.example_chat_types import Message
from wit_world.imports.ws_host_server_types import RoomExcept, Target_Room, Target_RoomExcept

HISTORY = 1000
ROOMS: dict[str, dict] = {}


def nick(client: int) -> str:
    return host.get_context(client) or ""


class Auth(exports.Auth):
    def on_auth(self, client, key, request):
        if not key:
            raise Err("Invalid auth key")
        host.set_context(client, key)


class Incoming(exports.Incoming):
    def join(self, from_, room):
        already = room in host.rooms(from_)
        host.join(from_, room)
        if not already:
            joined(Target_RoomExcept(RoomExcept(room, from_)), room, nick(from_))
        return sorted(nick(member) for member in host.members(room))

    def leave(self, from_, room):
        if room in host.rooms(from_):
            host.leave(from_, room)
            left(Target_Room(room), room, nick(from_))

    def say(self, from_, room, text):
        if room not in host.rooms(from_):
            return
        state = ROOMS.setdefault(room, {"seq": 0, "messages": []})
        state["seq"] += 1
        message = Message(room, nick(from_), text, state["seq"])
        if len(state["messages"]) == HISTORY:
            state["messages"].pop(0)
        state["messages"].append(message)
        said(Target_Room(room), message)

    def history(self, from_, room, limit):
        messages = ROOMS.get(room, {"messages": []})["messages"]
        return messages[max(0, len(messages) - limit):]


class Disconnected(exports.Disconnected):
    def on_disconnect(self, client, code, reason):
        name = nick(client)
        for room in host.rooms(client):
            host.leave(client, room)
            left(Target_Room(room), room, name)
