/**
 * The page served at `/`: one group of one tenant, updated live through
 * `EventSource`, with a form to set and delete keys. `?tenant=` and `?group=`
 * choose what it shows (default `demo` and `config`).
 *
 * The stream is opened with `?snapshot=1`: its first frame is the group's
 * entries with their position, the changes after that position follow, so
 * the page shows the group and then its changes with neither a gap nor a
 * repeat. `EventSource` reconnects on its own (after a server restart, say)
 * with the last `id` it saw, and the server resumes from there; when it
 * cannot, it sends `resync` and a fresh snapshot, which replaces the table.
 * Values are shown with `textContent`, never parsed as HTML. Above the table,
 * the tenant's write counter (`GET /t/:tenant/writes`).
 *
 * @module
 */

/** The whole page; no external resources. */
export const PAGE_HTML: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Live config</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 46rem; padding: 0 1rem; }
  table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
  th, td { border-bottom: 1px solid #ddd; padding: .35rem .5rem; text-align: left; vertical-align: top; }
  td.value { font-family: ui-monospace, monospace; white-space: pre-wrap; word-break: break-all; }
  #status { font-weight: 600; }
  #status[data-state="live"] { color: #16794a; }
  #status[data-state="error"], #error { color: #b3261e; }
  form { display: flex; gap: .5rem; flex-wrap: wrap; }
  input { padding: .3rem; }
  .flash { animation: flash 1s ease-out; }
  @keyframes flash { from { background: #fff3b0; } to { background: transparent; } }
</style>
</head>
<body>
<h1>Live config</h1>
<p>Tenant <code id="tenant"></code>, group <code id="group"></code>:
  <span id="status" data-state="connecting">connecting</span></p>
<p><span id="writes">0</span> writes to this tenant through the service.</p>
<table>
  <thead><tr><th>Key</th><th>Value</th><th></th></tr></thead>
  <tbody id="entries"></tbody>
</table>
<p id="empty" hidden>The group is empty.</p>
<form id="set">
  <input name="key" placeholder="key" required>
  <input name="value" placeholder="value">
  <input name="ttl" placeholder="ttl ms (optional)" inputmode="numeric">
  <button>Set</button>
</form>
<p id="error" role="alert"></p>
<script type="module">
const params = new URLSearchParams(location.search);
const tenant = params.get("tenant") || "demo";
const group = params.get("group") || "config";
// As encodeSegment() in server.ts: "." and ".." cannot be path segments.
const segment = (name) =>
  encodeURIComponent(/^~*\\.\\.?$/.test(name) ? "~" + name : name);
const base = "/t/" + encodeURIComponent(tenant) + "/g/" + segment(group);
const $ = (id) => document.getElementById(id);
$("tenant").textContent = tenant;
$("group").textContent = group;

let entries = new Map();
let synced = false; // a snapshot arrived: a resume needs no other
const changed = new Set();

function status(state) {
  $("status").dataset.state = state;
  $("status").textContent = state;
}

// The tenant's write counter, reloaded after each of the page's own writes and
// each event of the group (another client's write is counted just after its
// event is sent, so the figure may trail it until the next reload; writes to
// other groups show at the next one); one request at a time, one more if
// asked meanwhile.
let counting = false;
let countAgain = false;
async function countWrites() {
  if (counting) {
    countAgain = true;
    return;
  }
  counting = true;
  do {
    countAgain = false;
    try {
      const response = await fetch("/t/" + encodeURIComponent(tenant) + "/writes");
      if (response.ok) {
        $("writes").textContent = String((await response.json()).writes);
      }
    } catch {
      // Shown again at the next event.
    }
  } while (countAgain);
  counting = false;
}

function apply(event) {
  if (event.type === "set") entries.set(event.key, event.value);
  else if (event.type === "delete_group") entries.clear();
  else entries.delete(event.key);
  changed.add(event.key);
}

function render() {
  const rows = [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => {
      const row = document.createElement("tr");
      row.dataset.key = key;
      const name = document.createElement("th");
      name.textContent = key;
      const cell = document.createElement("td");
      cell.className = "value";
      cell.textContent = value;
      const actions = document.createElement("td");
      const remove = document.createElement("button");
      remove.textContent = "Delete";
      remove.onclick = () => send("DELETE", key);
      actions.append(remove);
      row.append(name, cell, actions);
      if (changed.has(key)) row.className = "flash";
      return row;
    });
  changed.clear();
  $("entries").replaceChildren(...rows);
  $("empty").hidden = entries.size > 0;
}

async function send(method, key, value, ttl) {
  $("error").textContent = "";
  const query = ttl ? "?ttl=" + encodeURIComponent(ttl) : "";
  try {
    const response = await fetch(base + "/k/" + segment(key) + query, {
      method,
      body: value,
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      $("error").textContent = response.status + ": " + (body.error ?? "");
    } else {
      // Counted before the answer: the counter shows this write now.
      countWrites();
    }
  } catch (error) {
    $("error").textContent = String(error.message ?? error);
  }
}

$("set").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  send("PUT", form.get("key"), form.get("value"), form.get("ttl"));
});

const source = new EventSource(
  "/t/" + encodeURIComponent(tenant) + "/events?snapshot=1&group=" +
    encodeURIComponent(group),
);
source.addEventListener("snapshot", (message) => {
  entries = new Map(Object.entries(JSON.parse(message.data).entries));
  synced = true;
  render();
  countWrites();
  status("live");
});
source.addEventListener("resync", () => status("syncing"));
source.onopen = () => status(synced ? "live" : "syncing");
source.onerror = () => {
  status(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
};
for (const type of ["set", "delete", "delete_group", "expire"]) {
  source.addEventListener(type, (message) => {
    apply(JSON.parse(message.data));
    render();
    countWrites();
  });
}
</script>
</body>
</html>
`;
