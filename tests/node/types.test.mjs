// `ws-host types chat.wasm` produces declarations that `tsc --noEmit`
// accepts for correct client code and rejects for a wrong call.
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";

const here = new URL("./types/", import.meta.url).pathname;
const tsc = new URL("./node_modules/typescript/bin/tsc", import.meta.url).pathname;

function project() {
    const dir = mkdtempSync(join(tmpdir(), "ws-host-types-"));
    const types = execFileSync(process.env.WS_HOST_BIN, ["types", process.env.GUEST_CHAT], { encoding: "utf8" });
    writeFileSync(join(dir, "chat-events.ts"), types);
    for (const file of ["client-shape.d.ts", "good.ts", "bad.ts"]) {
        copyFileSync(join(here, file), join(dir, file));
    }
    return dir;
}

function check(dir, file) {
    return spawnSync(process.execPath, [tsc, "--noEmit", "--strict", "--target", "es2022", "--moduleResolution", "node", join(dir, file)], { encoding: "utf8" });
}

test("the generated types accept a correct client and reject a wrong call", () => {
    const dir = project();
    const good = check(dir, "good.ts");
    assert.equal(good.status, 0, good.stdout + good.stderr);
    const bad = check(dir, "bad.ts");
    assert.notEqual(bad.status, 0, "tsc must reject bad.ts");
    assert.match(bad.stdout, /bad\.ts\(7,30\): error TS2322: Type 'number' is not assignable to type 'string'/);
});
