// Prints frames produced by the reference codec (@ezez/utils
// serializeToBuffer), one per line in hex; with `--json`, the same frames as
// JSON text frames, as `JSON.stringify` writes them (those JSON can carry).
// The Rust codecs must decode each and encode it back byte for byte
// (tests/codec_corpus.rs); compat.test.mjs checks the committed files are
// what this script prints today.
import { serializeToBuffer } from "@ezez/utils";

const serialize = (...args) => serializeToBuffer(Buffer, [], ...args);

export const corpus = [
    ["test"],
    ["ezez-ws::auth", "secret", 1],
    ["ezez-ws::auth-ok"],
    ["ezez-ws::auth-rejected", "Invalid auth key"],
    ["say", 1, null, "lobby", "hi"],
    ["data", 2, 7, Buffer.from([1, 2])],
    [1, 1.5, -0, NaN, Infinity, -Infinity, 1e21, 1e-7, 123456789012345680000, 0.1 + 0.2],
    [10n, -5n, 2n ** 70n, 0n],
    [undefined, null, true, false],
    [{ b: 1, a: [1, "x", null, undefined, true], c: { z: 1, a: 2 } }],
    [Buffer.from([0, 1, 2, 255]), Buffer.alloc(0)],
    ["h\u00e9llo \u{1f44b}", "\"quoted\"", "s:prefixed", "with\0nul", "\n\t\\", ""],
    [[], {}, [[[]]], { "": "" }],
    [{ "10": 1, "2": 2, b: 3, a: { "10": 1, "2": 2 } }],
    [{ text: "line\nbreak \u0001 \u007f \u2028", emoji: "\u{1f600}" }],
    [[1, [2, [3, { deep: [null] }]]]],
    ["join", 3, null, "room"],
    ["history", 4, null, "lobby", 10],
    [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 5e-324, 1.7976931348623157e308],
];

/** Whether JSON can carry `value`: no bigints and no byte buffers inside. */
const jsonCarries = (value) =>
    typeof value !== "bigint" &&
    !Buffer.isBuffer(value) &&
    (typeof value !== "object" || value === null || Object.values(value).every(jsonCarries));

export const jsonCorpus = corpus.filter(jsonCarries).map((args) => JSON.stringify(args));

if (import.meta.url === `file://${process.argv[1]}`) {
    if (process.argv.includes("--json")) {
        jsonCorpus.forEach((frame) => console.log(frame));
    } else {
        corpus.forEach((args) => console.log(serialize(...args).toString("hex")));
    }
}
