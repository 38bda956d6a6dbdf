/**
 * Go's `text/template/parse/parse.go` for the structure of a template:
 * text, actions and the control structures (`if`, `with`, `range`,
 * `define`, `block`, `template`, `break`, `continue`).
 *
 * Controls nest through an explicit stack of open frames rather than
 * recursion, so nesting depth is bounded by memory only, as in Go.
 *
 * @module
 */

import { lex, lexActionAt, T, type Token } from "./_lexer.ts";
import { Cursor, fastPath, fit, pipeline } from "./_pipeline.ts";
import { unquote } from "./_literals.ts";
import {
  type FieldActionNode,
  type Node,
  type Pipe,
  ROOT_NAME,
  Tree,
} from "./_tree.ts";

type FrameKind = "root" | "define" | "block" | "if" | "with" | "range";

/** An open list: the root, a definition body, or a control's branches. */
interface Frame {
  readonly kind: FrameKind;
  /** Where the `{{` that opened it (or its `else if` chain) is. */
  readonly first: number;
  readonly pipe: Pipe | null;
  /** The template name of a `define` or `block`. */
  readonly name: string;
  readonly namePos: number;
  /** Variables to restore on `{{end}}`. */
  readonly varMark: number;
  readonly outerVars: string[] | null;
  readonly outerRangeDepth: number;
  /** Opened by `{{else if}}`/`{{else with}}`: ends with its parent. */
  readonly chained: boolean;
  readonly main: Node[];
  elseList: Node[] | null;
  list: Node[];
}

/**
 * Parses a whole source into its named trees.
 *
 * @throws {TemplateError} On any syntax error, with its line and column.
 */
export function parse(source: string): Tree {
  return new Parser(source).parse();
}

/**
 * Re-parses the pipeline of a `{{ .key | … }}` action at `open`, for the
 * executor's general path. The action parsed once already, so this cannot
 * fail.
 */
export function parseFieldAction(source: string, node: FieldActionNode): Pipe {
  const cursor = new Cursor(lexActionAt(source, node.open), source, 1);
  return pipeline(cursor, "command", T.RightDelim, node.open);
}

/** Go's `unicode.IsSpace` characters. */
const GO_SPACES =
  /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;

/** Go's `IsEmptyTree`: only whitespace text (comments leave no node). */
function isEmpty(list: readonly Node[]): boolean {
  return list.every((node) =>
    node.kind === "text" && GO_SPACES.test(node.text)
  );
}

class Parser {
  readonly #c: Cursor;
  readonly #templates = new Map<string, readonly Node[]>();
  readonly #stack: Frame[] = [];
  #rangeDepth = 0;

  constructor(source: string) {
    this.#c = new Cursor(lex(source), source);
  }

  parse(): Tree {
    const c = this.#c;
    this.#stack.push(this.#frame("root", 0, null, "", 0, false));
    for (;;) {
      const token = c.nextNonSpace();
      if (token.type === T.EOF) break;
      const top = this.#top();
      if (token.type === T.Text) {
        top.list.push({ kind: "text", text: token.val });
        c.cost += 48;
      } else if (token.type === T.LeftDelim) {
        this.#action(token.pos);
      } else {
        c.unexpected(token, "input");
      }
    }
    const top = this.#top();
    if (top.kind !== "root") {
      const context = top.kind === "define" || top.kind === "block"
        ? `${top.kind} clause`
        : `{{${top.kind}}}`;
      c.fail(top.first, `unexpected EOF: ${context} has no matching {{end}}`);
    }
    this.#add(ROOT_NAME, fit(top.main), top.first);
    const cost = c.source.length * 2 + c.cost;
    return new Tree(this.#templates, c.source, cost);
  }

  #top(): Frame {
    return this.#stack[this.#stack.length - 1] as Frame;
  }

  #frame(
    kind: FrameKind,
    first: number,
    pipe: Pipe | null,
    name: string,
    namePos: number,
    chained: boolean,
    varMark = this.#c.vars.length,
  ): Frame {
    const main: Node[] = [];
    const isTree = kind === "define" || kind === "block";
    return {
      kind,
      first,
      pipe,
      name,
      namePos,
      varMark,
      outerVars: isTree ? this.#c.vars : null,
      outerRangeDepth: this.#rangeDepth,
      chained,
      main,
      elseList: null,
      list: main,
    };
  }

  /** Go's `Tree.add`: a name defined twice must be empty at least once. */
  #add(name: string, list: readonly Node[], pos: number): void {
    const existing = this.#templates.get(name);
    if (existing === undefined || isEmpty(existing)) {
      this.#templates.set(name, list);
    } else if (!isEmpty(list)) {
      this.#c.fail(
        pos,
        `template: multiple definition of template ${JSON.stringify(name)}`,
      );
    }
  }

  #action(open: number): void {
    const c = this.#c;
    const token = c.nextNonSpace();
    switch (token.type) {
      case T.Define:
        if (this.#stack.length === 1) return this.#define(open);
        break;
      case T.Block:
        return this.#block(open, token);
      case T.Template:
        return this.#template(token);
      case T.Break:
      case T.Continue:
        return this.#loopControl(open, token);
      case T.Else:
        return this.#else(open);
      case T.End:
        c.expect(T.RightDelim, "end");
        return this.#end(open);
      case T.If:
      case T.Range:
      case T.With:
        return this.#openControl(token.val as FrameKind, open, open, false);
    }
    c.backup();
    const start = c.i;
    const pipe = pipeline(c, "command", T.RightDelim, open);
    const fast = fastPath(pipe);
    if (fast !== null) {
      c.cost += 64;
      this.#top().list.push({
        kind: "field",
        key: fast[0],
        escapes: fast[1],
        open,
        pipe: null,
      });
    } else {
      c.cost += 32 + (c.i - start) * 24;
      this.#top().list.push({ kind: "action", pipe });
    }
  }

  #name(token: Token, context: string): string {
    if (token.type !== T.String && token.type !== T.RawString) {
      this.#c.unexpected(token, context);
    }
    const name = unquote(token.val);
    if (name === null) {
      this.#c.fail(token.pos, `invalid syntax in string literal ${token.val}`);
    }
    return name;
  }

  #define(open: number): void {
    const c = this.#c;
    const token = c.nextNonSpace();
    const name = this.#name(token, "define clause");
    c.expect(T.RightDelim, "define clause");
    this.#enterTree(this.#frame("define", open, null, name, token.pos, false));
  }

  #block(open: number, keyword: Token): void {
    const c = this.#c;
    const token = c.nextNonSpace();
    const name = this.#name(token, "block clause");
    const pipe = pipeline(c, "block clause", T.RightDelim, open);
    this.#enterTree(this.#frame("block", open, pipe, name, keyword.pos, false));
  }

  /** A definition body has its own variables and is outside any range. */
  #enterTree(frame: Frame): void {
    this.#c.vars = ["$"];
    this.#rangeDepth = 0;
    this.#stack.push(frame);
  }

  #template(keyword: Token): void {
    const c = this.#c;
    const name = this.#name(c.nextNonSpace(), "template clause");
    let pipe: Pipe | null = null;
    if (c.nextNonSpace().type !== T.RightDelim) {
      c.backup();
      pipe = pipeline(c, "template clause", T.RightDelim, keyword.pos);
    }
    c.cost += 64;
    this.#top().list.push({ kind: "template", pos: keyword.pos, name, pipe });
  }

  #loopControl(open: number, token: Token): void {
    const c = this.#c;
    const kind = token.type === T.Break ? "break" : "continue";
    const next = c.nextNonSpace();
    if (next.type !== T.RightDelim) c.unexpected(next, `{{${kind}}}`);
    if (this.#rangeDepth === 0) c.fail(open, `{{${kind}}} outside {{range}}`);
    this.#top().list.push({ kind });
  }

  #openControl(
    kind: FrameKind,
    open: number,
    first: number,
    chained: boolean,
  ): void {
    const c = this.#c;
    const mark = c.vars.length;
    const pipe = pipeline(c, kind, T.RightDelim, open);
    c.cost += 96;
    const frame = this.#frame(kind, first, pipe, "", open, chained, mark);
    if (kind === "range") this.#rangeDepth++;
    this.#stack.push(frame);
  }

  #else(open: number): void {
    const c = this.#c;
    const next = c.peekNonSpace();
    // "{{else if …" and "{{else with …" leave the keyword pending.
    const pending = next.type === T.If || next.type === T.With;
    if (!pending) c.expect(T.RightDelim, "else");
    const top = this.#top();
    if (top.kind === "root") c.fail(open, "unexpected {{else}}");
    if (top.kind === "define" || top.kind === "block") {
      c.fail(open, `unexpected {{else}} in ${top.kind} clause`);
    }
    if (top.elseList !== null) c.fail(open, "expected end; found {{else}}");
    top.elseList = [];
    top.list = top.elseList;
    if (top.kind === "range") this.#rangeDepth--;
    if (
      (top.kind === "if" && next.type === T.If) ||
      (top.kind === "with" && next.type === T.With)
    ) {
      c.nextNonSpace();
      this.#openControl(top.kind, open, top.first, true);
    }
  }

  #end(open: number): void {
    const c = this.#c;
    for (;;) {
      const frame = this.#top();
      if (frame.kind === "root") c.fail(open, "unexpected {{end}}");
      this.#stack.pop();
      const parent = this.#top();
      if (frame.kind === "define" || frame.kind === "block") {
        c.vars = frame.outerVars as string[];
        this.#rangeDepth = frame.outerRangeDepth;
        this.#add(frame.name, fit(frame.main), open);
        if (frame.kind === "block") {
          parent.list.push({
            kind: "template",
            pos: frame.namePos,
            name: frame.name,
            pipe: frame.pipe,
          });
        }
        return;
      }
      if (frame.kind === "range" && frame.elseList === null) this.#rangeDepth--;
      c.vars.length = frame.varMark;
      parent.list.push({
        kind: frame.kind as "if" | "with" | "range",
        pipe: frame.pipe as Pipe,
        list: fit(frame.main),
        elseList: frame.elseList === null ? null : fit(frame.elseList),
      } as Node);
      if (!frame.chained) return;
    }
  }
}
