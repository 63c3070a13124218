// Builds the JavaScript chat handler: `node build.mjs out.wasm` after
// `npm ci` here (build.sh does both). componentize-js compiles app.js with
// the StarlingMonkey engine against the chat WIT world, the same world as the
// Rust chat, into one component (~12 MB).
import { componentize } from "@bytecodealliance/componentize-js";
import { writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? "chat-js.wasm");
const { component } = await componentize({
    sourcePath: resolve(here, "app.js"),
    witPath: resolve(here, "wit"),
    worldName: "chat",
    // No HTTP handler: a ws-host handler only exports its events.
    disableFeatures: ["http", "fetch-event"],
});
await writeFile(out, component);
console.log(out);
