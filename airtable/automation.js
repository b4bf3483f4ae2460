// contact-sync: paste this into an Airtable automation's "Run a script" action.
//
// Trigger: "When a record is updated" on the Companies table, watching the CIN field ONLY. The
// service writes status fields on the same record, so a trigger on any field would run again
// after every status change. Not "When a record matches conditions" (CIN is not empty): it
// fires only when a record starts to match, so replacing one CIN with another would not run it.
// (For the Refresh Contacts automation "matches conditions", Refresh Contacts is checked, is
// right: each tick is the moment the record starts to match.)
//
// Input variables (left of the script editor, "+ Add input variable"):
//   recordId  ->  the triggering record's "Airtable record ID"
//   cin       ->  the triggering record's CIN field (a lookup or rollup of one CIN works too)
//   refresh   ->  (only in the "Refresh Contacts" automation) the record's Refresh Contacts field:
//                 ticked, it makes the service fetch again even if a recent answer is stored
//
// Set the constants below: where contact-sync runs and one of its WEBHOOK_SECRETS; the others
// only if the service's table or field names (AIRTABLE_COMPANIES_TABLE, AIRTABLE_FIELD_…) or
// RECONCILE_INTERVAL_S were changed.
//
// What it does: sends the CIN to the service, trying again while the run's time allows when the
// service is busy, restarting or out of reach. When the service refuses the CIN, the company
// shows Failed with the reason; when the service cannot be reached, it shows Waiting: the
// service's own sweep (reconciliation) picks the company up within RECONCILE_MINUTES once it is
// back, with no one typing the CIN again.

const SERVICE_URL = "https://contact-sync.example.com";
const WEBHOOK_SECRET = "paste-one-of-WEBHOOK_SECRETS-here";

const COMPANIES_TABLE = "Companies";
const STATUS_FIELD = "Contacts Sync Status";
const ERROR_FIELD = "Contacts Sync Error";
const RECONCILE_MINUTES = 15;

// The version of this script, sent with each call: the service's logs and `contact-sync doctor`
// say when an automation still runs an older one.
const SCRIPT_VERSION = "2";

// Airtable stops a "Run a script" action after 30 seconds, and a fetch that has no answer after
// 12 seconds (Airtable's automation script limits, as collected in Kuovonne's "Guide to Scripting
// in Airtable": "Automation script limits"; Airtable's own page: support.airtable.com/docs/
// run-a-script-action). Each call gets less than that, and the end of the run is kept for
// writing the outcome on the record.
const RUN_LIMIT_MS = 30000;
const FETCH_LIMIT_MS = 12000;
const CALL_LIMIT_MS = 10000;
const RESERVE_MS = 4000;
// Waits between attempts: 1 s, 2 s, 4 s, 8 s… (or what a 429's Retry-After asks).
const FIRST_WAIT_MS = 1000;
const LONGEST_WAIT_MS = 8000;

const runStarted = Date.now();
const timeLeft = () => RUN_LIMIT_MS - RESERVE_MS - (Date.now() - runStarted);
// Automation scripts may lack timers (setTimeout is a browser's, not the language's).
const hasTimers = typeof setTimeout === "function";

async function pause(ms) {
    if (hasTimers) {
        await new Promise((resolve) => setTimeout(resolve, ms));
        return;
    }
    const until = Date.now() + ms;
    while (Date.now() < until) {
        // Nothing else runs in this script meanwhile: no call is in flight between attempts.
    }
}

// One call, answer read whole, no longer than CALL_LIMIT_MS where timers exist (else Airtable's
// fetch limit holds). Returns {response, text}.
async function post(url, options) {
    const call = async (signal) => {
        const response = await fetch(url, signal ? { ...options, signal } : options);
        return { response, text: await response.text() };
    };
    if (!hasTimers) {
        return call(null);
    }
    const controller = typeof AbortController === "function" ? new AbortController() : null;
    let timer;
    const expired = new Promise((_, reject) => {
        timer = setTimeout(() => {
            if (controller) controller.abort();
            reject(new Error(`no answer within ${CALL_LIMIT_MS / 1000} s`));
        }, CALL_LIMIT_MS);
    });
    try {
        return await Promise.race([call(controller ? controller.signal : null), expired]);
    } finally {
        clearTimeout(timer);
    }
}

// A CIN input from a text field is a string; from a lookup or rollup, a list; from a number-like
// formula, a number. Invisible characters (zero-width spaces, byte-order marks, controls) are
// nothing. Returns the single CIN, "" when there is none, or null with several different ones.
function oneCin(value) {
    const values = (Array.isArray(value) ? value.flat(Infinity) : [value])
        .map((v) => (v && typeof v === "object" && "name" in v ? v.name : v))
        .filter((v) => v !== null && v !== undefined)
        .map((v) => String(v).replace(/[\u0000-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u2028-\u202f\u2060-\u206f\ufeff]/g, "").trim())
        .filter((v) => v !== "");
    const distinct = [...new Map(values.map((v) => [v.toUpperCase().replace(/\s+/g, ""), v])).values()];
    return distinct.length === 0 ? "" : distinct.length === 1 ? distinct[0] : null;
}

// Seconds from a Retry-After header (delay-seconds or an HTTP date), or null.
function retryAfterMs(response) {
    const header = response.headers && response.headers.get ? response.headers.get("Retry-After") : null;
    if (!header) return null;
    const seconds = Number(header);
    if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
    const date = Date.parse(header);
    return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

function parseJson(text) {
    try {
        return JSON.parse(text);
    } catch (error) {
        return null;
    }
}

// The service's refusals that are about this company's CIN or record: trying again, or waiting
// for the service's own sweep, would not help; the company shows Failed. Any other answer
// (a wrong secret or address, an outage) leaves the company to the sweep: it shows Waiting.
const REFUSALS = ["invalid_cin", "invalid_record_id", "invalid_field", "invalid_json", "payload_too_large"];

// Writes the outcome on the company, in the fields the table has: a single select takes
// {name}, a text field the text (Scripting: "Cell values & field options").
async function mark(recordId, status, message) {
    try {
        const table = base.getTable(COMPANIES_TABLE);
        const fields = {};
        const statusField = table.fields.find((f) => f.name === STATUS_FIELD);
        if (statusField) fields[STATUS_FIELD] = statusField.type === "singleSelect" ? { name: status } : status;
        if (table.fields.some((f) => f.name === ERROR_FIELD)) fields[ERROR_FIELD] = message;
        if (Object.keys(fields).length > 0) await table.updateRecordAsync(recordId, fields);
        return "";
    } catch (error) {
        return ` (the company could not be marked ${status}: ${error.message})`;
    }
}

// Sends the CIN, trying again after an outage while time allows; every attempt carries the same
// X-Request-Id, so that an attempt whose answer was lost is not stored twice (a Refresh Contacts
// tick is one paid call). Returns {ok: true, body} | {refused: message} | {unreachable: message}.
async function send(body) {
    const url = `${SERVICE_URL.replace(/\/+$/, "")}/webhooks/airtable`;
    const options = {
        method: "POST",
        redirect: "manual",
        headers: {
            "Content-Type": "application/json",
            "X-Webhook-Secret": WEBHOOK_SECRET,
            "X-Contact-Sync-Script": SCRIPT_VERSION,
            "X-Request-Id": `${body.record_id}-${runStarted}-${Math.floor(Math.random() * 1e9)}`,
        },
        body: JSON.stringify(body),
    };
    const callLimit = hasTimers ? Math.min(CALL_LIMIT_MS, FETCH_LIMIT_MS) : FETCH_LIMIT_MS;
    let problem = "";
    for (let attempt = 1; ; attempt++) {
        let wait = Math.min(LONGEST_WAIT_MS, FIRST_WAIT_MS * 2 ** (attempt - 1));
        try {
            const { response, text } = await post(url, options);
            const answer = parseJson(text);
            const error = answer && typeof answer === "object" && answer.error && typeof answer.error === "object"
                ? answer.error
                : null;
            if (response.ok && answer && typeof answer === "object" && answer.job_id) {
                return { ok: true, body: answer };
            }
            if (error && REFUSALS.includes(error.code) && response.status >= 400 && response.status < 500) {
                return { refused: `${error.message} (${error.code})` };
            }
            problem = error
                ? `contact-sync answered HTTP ${response.status}: ${error.message} (${error.code})`
                : `${SERVICE_URL} answered HTTP ${response.status} with an answer that is not contact-sync's`;
            if (response.status >= 300 && response.status < 500 && ![408, 429].includes(response.status)) {
                // A wrong address or secret: asking again does not help.
                return { unreachable: `${problem}: check SERVICE_URL and WEBHOOK_SECRET in the automation script` };
            }
            const asked = retryAfterMs(response);
            if (asked !== null) {
                if (asked > timeLeft() - callLimit) {
                    return { unreachable: `${problem}; it asked to wait ${Math.ceil(asked / 1000)} s, longer than this run may last` };
                }
                wait = Math.max(wait, asked);
            }
        } catch (error) {
            problem = `contact-sync could not be reached at ${SERVICE_URL}: ${error.message}`;
        }
        if (timeLeft() - wait < callLimit) {
            return { unreachable: `${problem} (${attempt} attempt${attempt > 1 ? "s" : ""})` };
        }
        console.log(`${problem}; trying again in ${Math.round(wait / 100) / 10} s`);
        await pause(wait);
    }
}

async function main() {
    const { recordId, cin, refresh } = input.config();
    if (!recordId) {
        throw new Error("The input variable recordId is not set: add it as the triggering record's Airtable record ID");
    }
    const value = oneCin(cin);
    if (value === "") {
        console.log("The CIN is empty: nothing was sent to contact-sync");
        output.set("result", "empty CIN: nothing sent");
        return;
    }
    if (value === null) {
        const message = "The CIN field holds several values: a company has one CIN";
        throw new Error(message + (await mark(recordId, "Failed", message)));
    }
    const outcome = await send({ record_id: recordId, cin: value, refresh: refresh === true || (Array.isArray(refresh) && refresh.includes(true)) });
    if (outcome.ok) {
        output.set("jobId", outcome.body.job_id);
        output.set("deduplicated", outcome.body.deduplicated);
        console.log(`contact-sync queued job ${outcome.body.job_id}${outcome.body.deduplicated ? " (already queued)" : ""}`);
        return;
    }
    if (outcome.refused) {
        const message = `contact-sync refused this CIN: ${outcome.refused}`;
        throw new Error(message + (await mark(recordId, "Failed", message)));
    }
    const message = `${outcome.unreachable}. contact-sync will pick this company up by itself within ${RECONCILE_MINUTES} minutes of being reachable again (reconciliation); nothing needs typing again.`;
    throw new Error(message + (await mark(recordId, "Waiting", message)));
}

await main();
