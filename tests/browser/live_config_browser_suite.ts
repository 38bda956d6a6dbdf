/**
 * The live-config page in headless Chromium, driven through the Chrome
 * DevTools protocol over Deno's built-in WebSocket: the page shows a group,
 * follows writes made over HTTP and by the store, and writes through its
 * form. Needs Chromium on the PATH (Debian: `apt-get install -y chromium`)
 * and more permissions than the plain test command, so it has no `_test`
 * suffix. Run it with:
 *
 * ```sh
 * deno test --allow-read --allow-write --allow-net --allow-run tests/browser/live_config_browser_suite.ts
 * ```
 *
 * Every wait is for an event (a CDP message, a DOM mutation, a store event);
 * the only timers are the safety timeouts that fail a stuck run.
 */
import assert from "node:assert/strict";
import { ScopedStore, Store, type StoreEvent } from "@core/store";
import { createApp, encodeSegment } from "../../examples/live_config/server.ts";
import { FakeClock, nextValue, tempDir } from "../_helpers.ts";

const BROWSERS = ["chromium", "chromium-browser", "google-chrome"];
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--remote-debugging-port=0",
];
/** Kills a browser that is still running after this long. */
const BROWSER_TIMEOUT_MS = 120_000;
/** How long an in-page wait may take before it fails. */
const PAGE_WAIT_MS = 15_000;

type Json = Record<string, unknown>;

/** A Chromium process with a DevTools WebSocket endpoint. */
class Browser implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly endpoint: string;
  readonly #stderr: Promise<string>;

  private constructor(
    child: Deno.ChildProcess,
    endpoint: string,
    stderr: Promise<string>,
  ) {
    this.child = child;
    this.endpoint = endpoint;
    this.#stderr = stderr;
  }

  static async launch(userDataDir: string): Promise<Browser> {
    let child: Deno.ChildProcess | undefined;
    for (const name of BROWSERS) {
      try {
        child = new Deno.Command(name, {
          args: [...FLAGS, `--user-data-dir=${userDataDir}`, "about:blank"],
          stdin: "null",
          stdout: "null",
          stderr: "piped",
          signal: AbortSignal.timeout(BROWSER_TIMEOUT_MS),
        }).spawn();
        break;
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
    }
    if (child === undefined) {
      throw new Error(
        `no Chromium found (tried ${
          BROWSERS.join(", ")
        }); install it with: apt-get install -y chromium`,
      );
    }
    // Chromium prints its DevTools endpoint on stderr; the rest of stderr is
    // kept for error messages.
    const reader = child.stderr.pipeThrough(new TextDecoderStream())
      .getReader();
    let seen = "";
    let endpoint: string | undefined;
    while (endpoint === undefined) {
      const { value, done } = await reader.read();
      if (done) {
        await child.status;
        throw new Error(`Chromium exited before listening:\n${seen}`);
      }
      seen += value;
      endpoint = seen.match(/DevTools listening on (ws:\/\/\S+)/)?.[1];
    }
    const stderr = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return seen;
        seen += value;
      }
    })();
    return new Browser(child, endpoint, stderr);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await this.child.status;
    await this.#stderr;
  }

  /** Waits for the process to exit by itself, returning its stderr. */
  async exited(): Promise<string> {
    await this.child.status;
    return await this.#stderr;
  }
}

/** A minimal Chrome DevTools protocol client, flat sessions. */
class DevTools implements AsyncDisposable {
  readonly #socket: WebSocket;
  readonly #closed: Promise<void>;
  #nextId = 1;
  readonly #pending = new Map<
    number,
    { resolve(result: Json): void; reject(error: Error): void }
  >();
  readonly #listeners = new Set<(message: Json) => void>();

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    this.#closed = new Promise((resolve) => {
      socket.addEventListener("close", () => {
        for (const { reject } of this.#pending.values()) {
          reject(new Error("the DevTools connection closed"));
        }
        this.#pending.clear();
        resolve();
      });
    });
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data as string) as Json;
      if (typeof message.id === "number") {
        const pending = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        const error = message.error as { message: string } | undefined;
        if (error) pending?.reject(new Error(error.message));
        else pending?.resolve(message.result as Json);
        return;
      }
      for (const listener of [...this.#listeners]) listener(message);
    });
  }

  static async connect(url: string): Promise<DevTools> {
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener("open", () => resolve(), { once: true });
      socket.addEventListener(
        "error",
        () => reject(new Error(`cannot connect to ${url}`)),
        { once: true },
      );
    });
    return new DevTools(socket);
  }

  send(method: string, params: Json = {}, sessionId?: string): Promise<Json> {
    const id = this.#nextId++;
    const message: Json = { id, method, params };
    if (sessionId !== undefined) message.sessionId = sessionId;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#socket.send(JSON.stringify(message));
    });
  }

  /** Registers for protocol events; returns the unregister function. */
  on(listener: (message: Json) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves with the params of the next `method` event of a session. */
  next(method: string, sessionId: string): Promise<Json> {
    return nextValue<Json>(
      (fn) => this.on(fn),
      (message) => message.method === method && message.sessionId === sessionId,
    ).then((message) => message.params as Json);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#socket.readyState !== WebSocket.CLOSED) this.#socket.close();
    await this.#closed;
  }
}

/** One page (tab) of the browser. */
class Page {
  readonly #devtools: DevTools;
  readonly #session: string;
  /** Uncaught exceptions and console errors of the page. */
  readonly errors: string[] = [];

  private constructor(devtools: DevTools, session: string) {
    this.#devtools = devtools;
    this.#session = session;
    devtools.on((message) => {
      if (message.sessionId !== session) return;
      const params = message.params as Json;
      if (message.method === "Runtime.exceptionThrown") {
        this.errors.push(JSON.stringify(params.exceptionDetails));
      } else if (
        message.method === "Runtime.consoleAPICalled" && params.type === "error"
      ) {
        this.errors.push(JSON.stringify(params.args));
      }
    });
  }

  static async open(devtools: DevTools): Promise<Page> {
    const { targetId } = await devtools.send("Target.createTarget", {
      url: "about:blank",
    });
    const { sessionId } = await devtools.send("Target.attachToTarget", {
      targetId,
      flatten: true,
    });
    const page = new Page(devtools, sessionId as string);
    await page.#send("Page.enable");
    await page.#send("Runtime.enable");
    return page;
  }

  #send(method: string, params: Json = {}): Promise<Json> {
    return this.#devtools.send(method, params, this.#session);
  }

  /** Navigates and waits for the load event. */
  async goto(url: string): Promise<void> {
    const loaded = this.#devtools.next("Page.loadEventFired", this.#session);
    const { errorText } = await this.#send("Page.navigate", { url });
    if (errorText) throw new Error(`cannot load ${url}: ${errorText}`);
    await loaded;
  }

  /** Evaluates an expression in the page, awaiting a promise it returns. */
  async eval<T>(expression: string): Promise<T> {
    const { result, exceptionDetails } = await this.#send("Runtime.evaluate", {
      expression,
      awaitPromise: true,
      returnByValue: true,
    }) as { result: { value: T }; exceptionDetails?: Json };
    if (exceptionDetails) {
      const exception = exceptionDetails.exception as Json | undefined;
      throw new Error(
        `in the page: ${exception?.description ?? exceptionDetails.text}`,
      );
    }
    return result.value;
  }

  /**
   * Resolves when `predicate` (a JavaScript expression) is truthy in the
   * page, re-checking on every DOM mutation; fails after PAGE_WAIT_MS with
   * the page's text.
   */
  waitFor(predicate: string): Promise<unknown> {
    return this.eval(`new Promise((resolve, reject) => {
      const check = () => {
        const value = (${predicate});
        if (!value) return;
        observer.disconnect();
        clearTimeout(timer);
        resolve(value);
      };
      const observer = new MutationObserver(check);
      observer.observe(document, {
        subtree: true, childList: true, characterData: true, attributes: true,
      });
      const timer = setTimeout(() => {
        observer.disconnect();
        reject(new Error("timed out waiting for " + ${
      JSON.stringify(predicate)
    } + "\\n" + document.body.innerText));
      }, ${PAGE_WAIT_MS});
      check();
    })`);
  }

  /** Waits until the table shows exactly `entries`, in order. */
  waitForRows(entries: [string, string][]): Promise<unknown> {
    return this.waitFor(`JSON.stringify([...document.querySelectorAll(
      "#entries tr")].map((row) => [row.dataset.key,
      row.querySelector("td.value").textContent])) === ${
      JSON.stringify(JSON.stringify(entries))
    } && document.getElementById("status").textContent === "live"`);
  }
}

Deno.test("live config page: Chromium shows a group and follows its changes live", async () => {
  using dir = tempDir();
  // A fake clock, so that a key's expiry happens when the test says.
  const clock = new FakeClock(1_700_000_000_000);
  using store = new Store(dir.file("live.db"), { clock: clock.fn });
  const demo = new ScopedStore(store, "demo");
  demo.set("config", "theme", "dark");
  demo.set("config", "a/b", "<i>not italic</i>");
  demo.set("other", "theme", "another group");
  let app = createApp({ store, heartbeatMs: 1_000 });
  const apps = [app];
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    (request) => app.handler(request),
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const keyUrl = (key: string) =>
    `${base}/t/demo/g/config/k/${encodeSegment(key)}`;
  const nextEvent = (accept: (event: StoreEvent) => boolean) =>
    nextValue<StoreEvent>((fn) => store.onChange(fn), accept);

  try {
    await using browser = await Browser.launch(dir.file("profile"));
    await using devtools = await DevTools.connect(browser.endpoint);
    const page = await Page.open(devtools);

    await page.goto(`${base}/?tenant=demo&group=config`);
    await page.waitForRows([
      ["a/b", "<i>not italic</i>"],
      ["theme", "dark"],
    ]);
    assert.equal(await page.eval(`document.querySelector("#entries i")`), null);

    // Writes by an HTTP client appear without a reload.
    let response = await fetch(keyUrl("theme"), {
      method: "PUT",
      body: "light",
    });
    assert.equal(response.status, 204);
    await page.waitForRows([["a/b", "<i>not italic</i>"], ["theme", "light"]]);

    const hostile = `<img src=x onerror="window.pwned = 1">`;
    response = await fetch(keyUrl(hostile), {
      method: "PUT",
      body: "<script>window.pwned = 2</script>",
    });
    assert.equal(response.status, 204);
    response = await fetch(keyUrl("a/b"), { method: "DELETE" });
    assert.equal(response.status, 204);
    await page.waitForRows([
      [hostile, "<script>window.pwned = 2</script>"],
      ["theme", "light"],
    ]);
    assert.equal(
      await page.eval(
        `document.querySelector("#entries img, #entries script") === null && window.pwned === undefined`,
      ),
      true,
    );

    // Writes made by the store itself, to this and other groups.
    demo.set("other", "theme", "not shown");
    demo.setWithTTL("config", "..", "dots", 60_000);
    await page.waitForRows([
      ["..", "dots"],
      [hostile, "<script>window.pwned = 2</script>"],
      ["theme", "light"],
    ]);

    // The page's form writes through the API.
    const submitted = nextEvent((event) => event.key === "from page");
    await page.eval(`(() => {
      const form = document.getElementById("set");
      form.key.value = "from page";
      form.value.value = "typed ✓";
      form.requestSubmit();
    })()`);
    const event = await submitted;
    assert.equal(event.group, "demo:config");
    assert.equal(event.value, "typed ✓");
    await page.waitForRows([
      ["..", "dots"],
      [hostile, "<script>window.pwned = 2</script>"],
      ["from page", "typed ✓"],
      ["theme", "light"],
    ]);
    // The tenant's write counter: three writes by fetch, one by the form
    // (the store's own writes are not the service's).
    await page.waitFor(`document.getElementById("writes").textContent === "4"`);

    // A bad ttl shows the service's error and writes nothing.
    await page.eval(`(() => {
      const form = document.getElementById("set");
      form.key.value = "never";
      form.ttl.value = "soon";
      form.requestSubmit();
    })()`);
    await page.waitFor(
      `document.getElementById("error").textContent.startsWith("400: ttl must be a positive integer")`,
    );
    assert.equal(demo.get("config", "never"), undefined);

    // The row's Delete button.
    const deleted = nextEvent((event) => event.type === "delete");
    await page.eval(
      `document.querySelector('#entries tr[data-key="theme"] button').click()`,
    );
    assert.equal((await deleted).key, "theme");
    await page.waitFor(`document.getElementById("writes").textContent === "5"`);

    // The stream ends (the app behind it closes); a write lands while the
    // page is disconnected; the page reconnects and loads the group again.
    app.close();
    await page.waitFor(
      `document.getElementById("status").textContent === "reconnecting"`,
    );
    demo.set("config", "offline", "written while disconnected");
    app = createApp({ store });
    apps.push(app);
    await page.waitForRows([
      ["..", "dots"],
      [hostile, "<script>window.pwned = 2</script>"],
      ["from page", "typed ✓"],
      ["offline", "written while disconnected"],
    ]);

    // A key that expires: its row goes when the expire event arrives.
    demo.setWithTTL("config", "brief", "soon gone", 1_000);
    await page.waitForRows([
      ["..", "dots"],
      [hostile, "<script>window.pwned = 2</script>"],
      ["brief", "soon gone"],
      ["from page", "typed ✓"],
      ["offline", "written while disconnected"],
    ]);
    const expired = nextEvent((event) => event.type === "expire");
    clock.advance(1_000);
    // Reading the key finds it expired and reports it (if the store's own
    // expiry timer has not already).
    assert.equal(demo.get("config", "brief"), undefined);
    assert.equal((await expired).key, "brief");
    await page.waitForRows([
      ["..", "dots"],
      [hostile, "<script>window.pwned = 2</script>"],
      ["from page", "typed ✓"],
      ["offline", "written while disconnected"],
    ]);

    demo.deleteGroup("config");
    await page.waitForRows([]);
    await page.waitFor(`!document.getElementById("empty").hidden`);

    assert.deepEqual(page.errors, []);
    await devtools.send("Browser.close");
    await browser.exited();
  } finally {
    for (const each of apps) each.close();
    await server.shutdown();
  }
});

/** The demo as its own process on `port`, until killed; resolves once it listens. */
async function startDemo(
  db: string,
  port: number,
): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env=PORT",
      new URL("../../examples/live_config/main.ts", import.meta.url).pathname,
      "--port",
      String(port),
      "--db",
      db,
      "--change-feed",
      "--heartbeat-ms",
      "1000",
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    while (!text.includes("listening on")) {
      const { done, value } = await lines.read();
      if (done) throw new Error(`the demo exited: ${text}`);
      text += value;
    }
  } finally {
    clearTimeout(deadline);
  }
  // Keep draining its output so that it never blocks on a full pipe.
  (async () => {
    while (!(await lines.read()).done);
  })().catch(() => {});
  return child;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

Deno.test("live config page: after the server is killed and restarted while writes go on, it shows exactly the store's data", async () => {
  using dir = tempDir();
  const db = dir.file("restart.db");
  // The writer is another process's connection to the file, as a second
  // instance of the service would be.
  using writer = new Store(db, { changeFeed: true, purgeIntervalMs: 0 });
  const demo = new ScopedStore(writer, "demo");
  demo.set("config", "start", "0");
  const port = freePort();
  let server = await startDemo(db, port);
  try {
    await using browser = await Browser.launch(dir.file("profile"));
    await using devtools = await DevTools.connect(browser.endpoint);
    const page = await Page.open(devtools);
    await page.goto(`http://127.0.0.1:${port}/?tenant=demo&group=config`);
    await page.waitForRows([["start", "0"]]);

    let i = 0;
    const write = () => {
      const n = i++;
      if (n % 7 === 3) demo.delete("config", `k${(n - 3) % 11}`);
      else demo.set("config", `k${n % 11}`, `v${n}`);
    };
    const tick = () => new Promise((r) => setTimeout(r, 10));
    for (let n = 0; n < 30; n++, await tick()) write();
    server.kill("SIGKILL");
    await server.status;
    // Writes go on while nobody serves the page.
    for (let n = 0; n < 30; n++, await tick()) write();
    server = await startDemo(db, port);
    for (let n = 0; n < 30; n++, await tick()) write();

    const expected = [...writer.getAll("demo:config")].sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0
    );
    await page.waitForRows(expected);
    assert.deepEqual(page.errors, []);
    await devtools.send("Browser.close");
    await browser.exited();
  } finally {
    try {
      server.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await server.status;
  }
});
