// Runs airtable/automation.js as an Airtable "Run a script" automation action runs it, offering
// only what that runtime offers: `input.config()`, `output.set()`, `base` (its writes go to the
// Airtable stand-in through its Web API), `fetch` and `console`, in a fresh JavaScript context
// (no process, require, timers or AbortController: sources disagree on whether automations have
// timers, so the stricter reading is the default; HARNESS_TIMERS=1 adds them).
//
// Airtable's limits (Kuovonne's "Guide to Scripting in Airtable", "Automation script limits"):
// a run is stopped after 30 s, and "If your script makes an API call that does not return a
// response within 12 seconds, the automation action will fail": the run ends there, the
// script's own error handling does not run. TIME_SCALE shrinks both (and every `…_MS` constant
// of the script) so that tests run quickly with the same proportions.
//
// Prints one JSON line: {ok, error?, outputs, logs, elapsed_ms, stopped?}.
import { readFileSync } from "node:fs";
import vm from "node:vm";

const [scriptPath, config] = process.argv.slice(2);
const scale = Number(process.env.TIME_SCALE || "1");
const RUN_LIMIT_MS = 30000 * scale;
const FETCH_LIMIT_MS = 12000 * scale;

const source = readFileSync(scriptPath, "utf8")
    .replace(/const SERVICE_URL = .*;/, `const SERVICE_URL = ${JSON.stringify(process.env.SERVICE_URL)};`)
    .replace(/const WEBHOOK_SECRET = .*;/, `const WEBHOOK_SECRET = ${JSON.stringify(process.env.WEBHOOK_SECRET)};`)
    .replace(/const (\w+_MS) = (\d+);/g, (_, name, ms) => `const ${name} = ${Math.round(Number(ms) * scale)};`);

// The base's schema, as scripting has it before the run begins.
const headers = { Authorization: `Bearer ${process.env.AIRTABLE_TOKEN}`, "Content-Type": "application/json" };
let tables = [];
try {
    const schema = await fetch(`${process.env.AIRTABLE_URL}/v0/meta/bases/${process.env.AIRTABLE_BASE_ID}/tables`, { headers });
    tables = schema.ok ? (await schema.json()).tables : [];
} catch (error) {
    tables = [];
}
const started = Date.now();
const outputs = {};
const logs = [];

function finish(result) {
    console.log(JSON.stringify({ ...result, outputs, logs, elapsed_ms: Date.now() - started }));
    process.exit(result.ok ? 0 : 1);
}

const runTimer = setTimeout(
    () => finish({ ok: false, stopped: "run", error: `the script ran longer than ${RUN_LIMIT_MS} ms` }),
    RUN_LIMIT_MS,
);

// Airtable's fetch limit counts until the answer is read whole, not only its headers.
async function limitedFetch(url, options = {}) {
    const deadline = Date.now() + FETCH_LIMIT_MS;
    const within = (promise) => {
        let timer;
        const limit = new Promise(() => {
            timer = setTimeout(
                () => finish({ ok: false, stopped: "fetch", error: `a fetch had no answer within ${FETCH_LIMIT_MS} ms` }),
                Math.max(0, deadline - Date.now()),
            );
        });
        return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
    };
    const response = await within(fetch(url, options));
    return {
        ok: response.ok,
        status: response.status,
        headers: response.headers,
        text: () => within(response.text()),
        json: () => within(response.json()),
    };
}

// `base.getTable(name)`: its `fields` ({name, type}) from the base's schema, read once before the
// run as scripting has them; `updateRecordAsync(recordId, fields)` refuses a single select not
// written as {name} ("Cell values & field options"), and writes through the Web API.
const base = {
    getTable(name) {
        const table = tables.find((t) => t.name === name || t.id === name);
        if (!table) throw new Error(`No table "${name}" in this base`);
        const fields = table.fields.map((f) => ({ id: f.id, name: f.name, type: f.type }));
        return {
            fields,
            async updateRecordAsync(recordId, values) {
                for (const [key, value] of Object.entries(values)) {
                    const field = fields.find((f) => f.name === key || f.id === key);
                    if (!field) throw new Error(`No field "${key}" in table "${name}"`);
                    if (field.type === "singleSelect" && !(value && typeof value === "object" && "name" in value)) {
                        throw new Error(`Field "${key}" is a single select: write {name: …}`);
                    }
                }
                const plain = Object.fromEntries(
                    Object.entries(values).map(([key, value]) => [
                        key,
                        value && typeof value === "object" && "name" in value ? value.name : value,
                    ]),
                );
                const url = `${process.env.AIRTABLE_URL}/v0/${process.env.AIRTABLE_BASE_ID}/${encodeURIComponent(name)}/${recordId}`;
                const response = await fetch(url, { method: "PATCH", headers, body: JSON.stringify({ fields: plain }) });
                if (!response.ok) {
                    const body = await response.text();
                    throw new Error(`Airtable answered ${response.status}: ${body.slice(0, 200)}`);
                }
            },
        };
    },
};

const globals = {
    input: { config: () => JSON.parse(config) },
    output: { set: (key, value) => { outputs[key] = value; } },
    base,
    fetch: limitedFetch,
    console: { log: (...args) => logs.push(args.join(" ")), error: (...args) => logs.push(args.join(" ")) },
};
if (process.env.HARNESS_TIMERS === "1") {
    Object.assign(globals, { setTimeout, clearTimeout, AbortController });
}

try {
    await vm.runInContext(`(async () => {\n${source}\n})()`, vm.createContext(globals));
    clearTimeout(runTimer);
    finish({ ok: true });
} catch (error) {
    clearTimeout(runTimer);
    finish({ ok: false, error: error && error.message ? error.message : String(error) });
}
