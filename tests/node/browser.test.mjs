// The browser demo end to end, started as the README's first command starts
// it (`examples/demo.sh`, which builds the chat handler and runs `ws-host run
// chat.wasm --static examples/chat-web`): two headless Chromium pages chat,
// see each other's messages, and reconnect after the server restarts. A
// screenshot of the demo is kept in $ARTIFACTS_DIR.
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { chromium } from "playwright-core";

const demo = new URL("../../examples/demo.sh", import.meta.url).pathname;
const listening = "ws-host listening on ws://";

// The script execs `cargo run`, which execs ws-host: the child is the server.
function startServer(port) {
    const child = spawn("bash", [demo], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, PORT: String(port), RUST_LOG: "warn" },
    });
    // The set-up's output (rustup, cargo), shown only if the demo fails to start.
    let setup = "";
    child.stderr.on("data", (chunk) => (setup += chunk));
    return new Promise((resolve, reject) => {
        createInterface({ input: child.stdout }).on("line", (line) => {
            if (!line.startsWith(listening)) return;
            const address = line.slice(listening.length);
            resolve({ child, address, port: Number(address.split(":")[1]) });
        });
        child.once("exit", (code) => reject(new Error(`examples/demo.sh exited with ${code}:\n${setup}`)));
    });
}

function stopServer(server) {
    return new Promise((resolve) => {
        server.child.once("exit", resolve);
        server.child.kill("SIGTERM");
    });
}

let browser;
let server;

before(async () => {
    server = await startServer(0);
    browser = await chromium.launch({
        executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
        args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
});

after(async () => {
    await browser?.close();
    if (server) await stopServer(server);
});

test("two pages chat, and reconnect after the server restarts", async () => {
    const open = async (nick) => {
        const page = await browser.newPage();
        await page.goto(`http://${server.address}/?nick=${nick}&room=lobby`);
        await page.waitForSelector("#status.online");
        return page;
    };
    const ann = await open("ann");
    const bob = await open("bob");
    await ann.waitForSelector("#log li:has-text('bob joined')");

    await ann.fill("input[name=text]", "hello from ann");
    await ann.click("button");
    await bob.waitForSelector("#log li:has-text('hello from ann')");
    await ann.waitForSelector("#log li:has-text('hello from ann')");

    await bob.fill("input[name=text]", "hi ann, bob here");
    await bob.press("input[name=text]", "Enter");
    await ann.waitForSelector("#log li:has-text('hi ann, bob here')");

    const artifacts = process.env.ARTIFACTS_DIR || "/tmp";
    mkdirSync(artifacts, { recursive: true });
    await ann.screenshot({ path: `${artifacts}/chat-demo.png`, fullPage: true });

    // Restart the server on the same port: both pages go offline, come back.
    const port = server.port;
    await stopServer(server);
    await ann.waitForSelector("#status:not(.online)");
    server = await startServer(port);
    await ann.waitForSelector("#status.online", { timeout: 15_000 });
    await bob.waitForSelector("#status.online", { timeout: 15_000 });

    await bob.fill("input[name=text]", "back after the restart");
    await bob.click("button");
    await ann.waitForSelector("#log li:has-text('back after the restart')");
    assert.equal(await ann.locator("#log li b").count(), 3, "three messages, each shown once");
});
