/**
 * Go's `text/template/exec.go` for the structure of a template: walks the
 * lists of a parsed tree with an explicit stack of frames (no recursion per
 * nesting level or template call), under a step and output budget.
 *
 * @module
 */

import { utf8Length } from "../_utf8.ts";
import { TemplateError } from "../errors.ts";
import { type Budget, Evaluator } from "./_eval.ts";
import { parseFieldAction } from "./_parser.ts";
import {
  type FieldActionNode,
  type Node,
  type Pipe,
  type RangeNode,
  ROOT_NAME,
  type TemplateNode,
  type Tree,
} from "./_tree.ts";
import {
  formatValue,
  type GoMap,
  GoUint8,
  isMap,
  isTrue,
  type Value,
} from "./_values.ts";

/** Go's `maxExecDepth`: nested `{{template}}` calls. */
const MAX_TEMPLATE_DEPTH = 100_000;

/** The iteration state of one `range`. */
interface Loop {
  readonly node: RangeNode;
  /** Variable count before the range's pipeline, restored at its end. */
  readonly mark: number;
  /** Variable count after the pipeline's declarations. */
  readonly inner: number;
  readonly entries: Iterator<[string, string]> | null;
  readonly limit: bigint;
  readonly uint8: boolean;
  next: bigint;
}

/** One list being walked. */
interface Frame {
  readonly list: readonly Node[];
  i: number;
  dot: Value;
  /** Variable count to restore when the list ends. */
  readonly mark: number;
  /** The caller's variable base, for a template call's frame. */
  readonly callerBase: number;
  readonly loop: Loop | null;
}

/** Walks a tree with data; one instance per execution. */
export class Executor extends Evaluator {
  readonly #tree: Tree;
  readonly #frames: Frame[] = [];
  #calls = 0;

  constructor(tree: Tree, mode: number, budget: Budget) {
    super(tree.source, mode, budget);
    this.#tree = tree;
  }

  run(data: GoMap): string {
    try {
      this.push("$", data);
      this.#enter(this.#tree.templates.get(ROOT_NAME) ?? [], data, -1, null);
      this.#walk();
    } catch (error) {
      if (error instanceof TemplateError || !(error instanceof RangeError)) {
        throw error;
      }
      // V8's "Invalid string length" and "Maximum call stack size
      // exceeded": the template asked for more than this process has.
      this.fail(this.at, `execution ran out of resources: ${error.message}`);
    }
    if (
      this.out.length * 3 > this.budget.maxOutputBytes &&
      utf8Length(this.out) > this.budget.maxOutputBytes
    ) {
      this.fail(
        this.at,
        `output exceeds the budget of ${this.budget.maxOutputBytes} bytes`,
      );
    }
    return this.out;
  }

  #enter(
    list: readonly Node[],
    dot: Value,
    callerBase: number,
    loop: Loop | null,
  ): void {
    this.#frames.push({ list, i: 0, dot, mark: this.count, callerBase, loop });
  }

  #walk(): void {
    const frames = this.#frames;
    while (frames.length > 0) {
      const frame = frames[frames.length - 1] as Frame;
      if (frame.i >= frame.list.length) {
        this.#endList(frame);
        continue;
      }
      const node = frame.list[frame.i++] as Node;
      if (++this.steps > this.budget.maxSteps) this.step(this.at);
      switch (node.kind) {
        case "text":
          this.write(node.text);
          continue;
        case "field":
          this.#field(node, frame.dot);
          continue;
        case "action": {
          const value = this.evalPipeline(frame.dot, node.pipe);
          if (node.pipe.decls.length === 0) this.#print(value);
          continue;
        }
        case "if":
        case "with": {
          const mark = this.count;
          const value = this.evalPipeline(frame.dot, node.pipe);
          const list = isTrue(value) ? node.list : node.elseList;
          if (list === null) {
            this.count = mark;
          } else {
            const dot = node.kind === "with" && list === node.list
              ? value
              : frame.dot;
            this.#frames.push({
              list,
              i: 0,
              dot,
              mark,
              callerBase: -1,
              loop: null,
            });
          }
          continue;
        }
        case "range":
          this.#range(node, frame.dot);
          continue;
        case "template":
          this.#template(node, frame.dot);
          continue;
        case "break":
        case "continue":
          this.#loopControl(node.kind === "break");
      }
    }
  }

  #print(value: Value): void {
    if (isMap(value)) this.charge(value.size * 64);
    const text = formatValue(value);
    if (typeof value !== "string") this.charge(text.length);
    this.write(text);
  }

  /** `{{ .key | … }}`: the key's value escaped, or Go's general path. */
  #field(node: FieldActionNode, dot: Value): void {
    if (isMap(dot)) {
      const value = dot.get(node.key);
      if (value !== undefined) {
        let text = value;
        for (const escape of node.escapes) {
          this.charge(text.length);
          const escaped = escape(text);
          this.chargeEscape(text, escaped);
          text = escaped;
        }
        this.write(text);
        return;
      }
    }
    node.pipe ??= parseFieldAction(this.source, node);
    this.#print(this.evalPipeline(dot, node.pipe));
  }

  /** A list ran to its end: the next iteration of a range, or pop. */
  #endList(frame: Frame): void {
    const loop = frame.loop;
    if (loop !== null) {
      this.count = loop.inner;
      if (this.#advance(loop, frame)) return;
      this.#frames.pop();
      this.count = loop.mark;
      return;
    }
    this.#frames.pop();
    this.count = frame.mark;
    if (frame.callerBase >= 0) {
      this.base = frame.callerBase;
      this.#calls--;
    }
  }

  #range(node: RangeNode, dot: Value): void {
    const mark = this.count;
    const value = this.evalPipeline(dot, node.pipe);
    const pipe = node.pipe;
    let entries: Iterator<[string, string]> | null = null;
    let limit = 0n;
    const uint8 = value instanceof GoUint8;
    if (isMap(value)) {
      entries = value.entries();
    } else if (typeof value === "bigint" || uint8) {
      if (pipe.decls.length > 1) {
        this.fail(
          firstCommand(pipe),
          `can't use ${
            formatValue(value)
          } to iterate over more than one variable`,
        );
      }
      limit = uint8 ? BigInt(value.uint8) : value as bigint;
    } else if (value !== null) {
      this.fail(
        firstCommand(pipe),
        `range can't iterate over ${formatValue(value)}`,
      );
    }
    const loop: Loop = {
      node,
      mark,
      inner: this.count,
      entries,
      limit,
      uint8,
      next: 0n,
    };
    const frame: Frame = {
      list: node.list,
      i: 0,
      dot,
      mark,
      callerBase: -1,
      loop,
    };
    if (this.#advance(loop, frame)) {
      this.#frames.push(frame);
    } else if (node.elseList !== null) {
      this.#frames.push({
        list: node.elseList,
        i: 0,
        dot,
        mark,
        callerBase: -1,
        loop: null,
      });
    } else {
      this.count = mark;
    }
  }

  /** Starts the loop's next iteration in `frame`; `false` when done. */
  #advance(loop: Loop, frame: Frame): boolean {
    let key: Value;
    let item: Value;
    if (loop.entries !== null) {
      const next = loop.entries.next();
      if (next.done === true) return false;
      [key, item] = next.value;
    } else {
      if (loop.next >= loop.limit) return false;
      key = null;
      item = loop.uint8 ? new GoUint8(Number(loop.next)) : loop.next;
      loop.next++;
    }
    this.step(firstCommand(loop.node.pipe));
    this.#setRangeVars(loop.node.pipe, key, item);
    frame.i = 0;
    frame.dot = item;
    return true;
  }

  /** Go's `oneIteration` variable updates. */
  #setRangeVars(pipe: Pipe, index: Value, item: Value): void {
    const decls = pipe.decls;
    if (decls.length === 0) return;
    const [first, second] = decls;
    if (pipe.isAssign) {
      if (second !== undefined) {
        this.setVar(first!, index);
        this.setVar(second, item);
      } else {
        this.setVar(first!, item);
      }
      return;
    }
    this.values[this.count - 1] = item;
    if (second !== undefined) this.values[this.count - 2] = index;
  }

  /** Unwinds to the innermost range; `break` ends it, `continue` advances. */
  #loopControl(isBreak: boolean): void {
    for (;;) {
      const frame = this.#frames[this.#frames.length - 1] as Frame;
      const loop = frame.loop;
      if (loop === null) {
        this.#frames.pop();
        this.count = frame.mark;
        continue;
      }
      if (isBreak) {
        this.#frames.pop();
        this.count = loop.mark;
      } else {
        frame.i = frame.list.length;
      }
      return;
    }
  }

  /** Go's `walkTemplate`: no variables but `$` cross into the call. */
  #template(node: TemplateNode, dot: Value): void {
    this.at = node.pos;
    const list = this.#tree.templates.get(node.name);
    if (list === undefined) {
      this.fail(node.pos, `template ${JSON.stringify(node.name)} not defined`);
    }
    if (this.#calls >= MAX_TEMPLATE_DEPTH) {
      this.fail(
        node.pos,
        `exceeded maximum template depth (${MAX_TEMPLATE_DEPTH})`,
      );
    }
    const value = node.pipe === null ? null : this.evalPipeline(dot, node.pipe);
    const callerBase = this.base;
    const mark = this.count;
    this.base = this.count;
    this.push("$", value);
    this.#calls++;
    this.#frames.push({ list, i: 0, dot: value, mark, callerBase, loop: null });
  }
}

function firstCommand(pipe: Pipe): number {
  return pipe.cmds[0]?.pos ?? pipe.pos;
}
