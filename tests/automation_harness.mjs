// Runs airtable/automation.js the way an Airtable "Run a script" action does: top-level await,
// `input.config()` and `output.set()` provided, the real `fetch`. The two constants a person
// edits after pasting the script come from the environment.
import { readFileSync } from "node:fs";

const [scriptPath, config] = process.argv.slice(2);
const source = readFileSync(scriptPath, "utf8")
    .replace(/const SERVICE_URL = .*;/, `const SERVICE_URL = ${JSON.stringify(process.env.SERVICE_URL)};`)
    .replace(/const WEBHOOK_SECRET = .*;/, `const WEBHOOK_SECRET = ${JSON.stringify(process.env.WEBHOOK_SECRET)};`);
const outputs = {};
const input = { config: () => JSON.parse(config) };
const output = { set: (key, value) => { outputs[key] = value; } };
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
try {
    await new AsyncFunction("input", "output", source)(input, output);
    console.log(JSON.stringify({ ok: true, outputs }));
} catch (error) {
    console.log(JSON.stringify({ ok: false, error: error.message }));
    process.exitCode = 1;
}
