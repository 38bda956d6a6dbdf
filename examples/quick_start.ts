/**
 * A quick tour of `@core/store` on a file-backed store: set and get values,
 * let one expire, count and list a group, render a template, follow changes
 * with a callback and a watcher, delete a group, and reopen the file to see
 * that the data persisted.
 *
 * Run it from the repository root:
 *
 * ```sh
 * deno task quickstart
 * # which is:
 * deno run --allow-read --allow-write examples/quick_start.ts
 * ```
 *
 * The database lives in `./data/quick-start.db`. Run the demo twice and the
 * visit counter goes up: that value survives from one run to the next.
 *
 * @module
 */

import { Store, type StoreEvent } from "@core/store";

const DB_PATH = "data/quick-start.db";
Deno.mkdirSync("data", { recursive: true });

/** One line per event, e.g. `set user:42/name = "Ada"`. */
function format(event: StoreEvent): string {
  let line = `${event.type} ${event.group}/${event.key}`;
  if (event.value !== undefined) line += ` = ${JSON.stringify(event.value)}`;
  if (event.expiresAt !== undefined) {
    line += ` (expires in ${event.expiresAt - event.timestamp} ms)`;
  }
  return line;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

console.log(`Opening ${DB_PATH}`);
{
  // `using` closes the store at the end of this block, even on error.
  using store = new Store(DB_PATH);

  const visits = Number(store.get("app", "visits") ?? "0") + 1;
  store.set("app", "visits", String(visits));
  console.log(`This is run number ${visits} of the quick start.`);

  // Start the demo groups afresh, so that every run prints the same thing.
  for (const group of ["user:42", "session", "config"]) {
    store.deleteGroup(group);
  }

  // Called synchronously after every committed write, until unregistered.
  const stopLogging = store.onChange((event) => {
    console.log(`  [onChange] ${format(event)}`);
  });

  console.log("\n1. set and get");
  store.set("user:42", "name", "Ada");
  store.set("user:42", "role", "engineer");
  store.set("user:42", "city", "London");
  console.log(`  name  -> ${store.get("user:42", "name")}`);
  console.log(`  email -> ${store.get("user:42", "email")} (never set)`);

  console.log("\n2. setWithTTL: a value that expires");
  store.setWithTTL("session", "token", "abc123", 100);
  console.log(`  token right away   -> ${store.get("session", "token")}`);
  await sleep(150);
  console.log(`  token after 150 ms -> ${store.get("session", "token")}`);

  console.log("\n3. count and getAll");
  console.log(`  user:42 holds ${store.count("user:42")} keys:`);
  for (const [key, value] of store.getAll("user:42")) {
    console.log(`    ${key} = ${value}`);
  }

  console.log("\n4. render a Go text/template against a group");
  const template = "{{ .name }} works as an {{ .role }} in {{ .city }}.";
  console.log(`  ${store.render(template, "user:42")}`);

  console.log("\n5. watch a group and read one event");
  const watcher = store.watch("config", "*");
  store.set("config", "theme", "dark");
  for await (const event of watcher) {
    console.log(`  [watcher]  ${format(event)}`);
    break; // leaving the loop unwatches
  }

  console.log("\n6. deleteGroup");
  console.log(`  removed ${store.deleteGroup("config")} key(s) from config`);

  stopLogging();
}

console.log("\n7. reopen the file: the data is still there");
{
  using store = new Store(DB_PATH);
  console.log(`  user:42 name -> ${store.get("user:42", "name")}`);
  console.log(`  visits       -> ${store.get("app", "visits")}`);
  console.log(`  groups       -> ${store.groups().join(", ")}`);
}
console.log("\nDone. The store is closed and the process exits by itself.");
