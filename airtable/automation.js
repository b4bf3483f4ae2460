// contact-sync: paste this into an Airtable automation's "Run a script" action.
//
// Trigger: "When a record matches conditions" (or "When a record is updated") on the Companies
// table, watching the CIN field ONLY. The service writes status fields on the same record, so a
// trigger on any field would run again after every status change.
//
// Input variables (left of the script editor, "+ Add input variable"):
//   recordId  ->  the triggering record's "Airtable record ID"
//   cin       ->  the triggering record's CIN field
//   refresh   ->  (only in the "Refresh Contacts" automation) the record's Refresh Contacts field:
//                 ticked, it makes the service fetch again even if a recent answer is stored
//
// Set the two constants below: where contact-sync runs, and one of its WEBHOOK_SECRETS.

const SERVICE_URL = "https://contact-sync.example.com";
const WEBHOOK_SECRET = "paste-one-of-WEBHOOK_SECRETS-here";

const { recordId, cin, refresh } = input.config();

let response;
try {
    response = await fetch(`${SERVICE_URL.replace(/\/+$/, "")}/webhooks/airtable`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Webhook-Secret": WEBHOOK_SECRET },
        body: JSON.stringify({ record_id: recordId, cin: cin ? String(cin).trim() : null, refresh: refresh === true }),

    });
} catch (error) {
    throw new Error(`contact-sync could not be reached at ${SERVICE_URL}: ${error.message}`);
}

let body = null;
try {
    body = await response.json();
} catch (error) {
    body = null;
}

if (!response.ok) {
    const message = body && body.error ? `${body.error.message} (${body.error.code})` : `HTTP ${response.status}`;
    // Throwing fails this automation run; the message shows in the run history.
    throw new Error(`contact-sync refused the request: ${message}`);
}

output.set("jobId", body.job_id);
output.set("deduplicated", body.deduplicated);
console.log(`contact-sync queued job ${body.job_id}${body.deduplicated ? " (already queued)" : ""}`);
