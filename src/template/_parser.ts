/**
 * Go's `text/template/parse/parse.go` over the token list.
 *
 * @module
 */

import { decodeUtf8, encodeUtf8 } from "../_utf8.ts";
import { type Escaper, ESCAPERS, quote } from "./_escape.ts";
import { FUNCTIONS } from "./_funcs.ts";
import {
  codePointWidth,
  T,
  type Token,
  type TokenList,
  type TokenType,
} from "./_lexer.ts";
import {
  type Arg,
  argString,
  type BranchNode,
  type Command,
  type Decl,
  errorAt,
  isMarker,
  type Marker,
  type Node,
  type Pipe,
  type RangeNode,
} from "./_tree.ts";

/** Go's `item.String()`, for "unexpected …" messages. */
function tokenString(token: Token): string {
  if (token.type === T.EOF) return "EOF";
  if (token.type > T.Keyword) return `<${token.val}>`;
  const chars = [...token.val];
  return chars.length > 10
    ? quote(chars.slice(0, 10).join("")) + "..."
    : quote(token.val);
}

/** Nesting deeper than this is refused, so the JS stack cannot overflow. */
const MAX_DEPTH = 1000;

const DECIMAL_INT = /^[+-]?(?:0|[1-9][0-9]*)$/;

/** Go's `strconv.Unquote` of a string token, or `null` when it is invalid. */
function unquote(token: Token): string | null {
  const inner = token.val.slice(1, -1);
  if (token.type === T.RawString) return inner.replaceAll("\r", "");
  if (!inner.includes("\\")) return inner;
  const bytes: number[] = [];
  for (let i = 0; i < inner.length;) {
    const c = inner.charCodeAt(i);
    if (c !== 0x5c) {
      const cp = inner.codePointAt(i) as number;
      pushUtf8(bytes, cp);
      i += codePointWidth(cp);
      continue;
    }
    const e = inner[i + 1];
    i += 2;
    const simple = SIMPLE_ESCAPES.get(e as string);
    if (simple !== undefined) {
      bytes.push(simple);
      continue;
    }
    if (e === "x" || e === "u" || e === "U") {
      const digits = inner.slice(i, i + (e === "x" ? 2 : e === "u" ? 4 : 8));
      if (!/^[0-9a-fA-F]+$/.test(digits)) return null;
      if (digits.length !== (e === "x" ? 2 : e === "u" ? 4 : 8)) return null;
      i += digits.length;
      const value = parseInt(digits, 16);
      if (e === "x") {
        bytes.push(value);
      } else {
        if (value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) {
          return null;
        }
        pushUtf8(bytes, value);
      }
      continue;
    }
    if (e !== undefined && e >= "0" && e <= "7") {
      const digits = inner.slice(i - 1, i + 2);
      if (!/^[0-7]{3}$/.test(digits)) return null;
      const value = parseInt(digits, 8);
      if (value > 255) return null;
      bytes.push(value);
      i += 2;
      continue;
    }
    return null;
  }
  try {
    return decodeUtf8(new Uint8Array(bytes), true);
  } catch {
    return null;
  }
}

const SIMPLE_ESCAPES: ReadonlyMap<string, number> = new Map([
  ["a", 0x07],
  ["b", 0x08],
  ["f", 0x0c],
  ["n", 0x0a],
  ["r", 0x0d],
  ["t", 0x09],
  ["v", 0x0b],
  ["\\", 0x5c],
  ['"', 0x22],
]);

function pushUtf8(bytes: number[], cp: number): void {
  for (const b of encodeUtf8(String.fromCodePoint(cp))) bytes.push(b);
}

/** Recognises the action shapes that {@linkcode ActionNode.fastKey} covers. */
function fastPath(pipe: Pipe): [string, Escaper | null] | null {
  if (pipe.decls.length > 0) return null;
  const [first, ...rest] = pipe.cmds;
  if (first === undefined) return null;
  const escapers: Escaper[] = [];
  const [head, field = head, ...more] = first.args;
  if (more.length > 0) return null;
  if (field !== head) {
    const escaper = head?.kind === "identifier"
      ? ESCAPERS.get(head.name)
      : undefined;
    if (escaper === undefined) return null;
    escapers.push(escaper);
  }
  if (field?.kind !== "field" || field.idents.length !== 1) return null;
  for (const cmd of rest) {
    const [fn, ...args] = cmd.args;
    if (fn?.kind !== "identifier" || args.length > 0) return null;
    const escaper = ESCAPERS.get(fn.name);
    if (escaper === undefined) return null;
    escapers.push(escaper);
  }
  const key = field.idents[0] as string;
  const [a, b, ...others] = escapers;
  if (a === undefined) return [key, null];
  if (b === undefined) return [key, a];
  if (others.length === 0) return [key, (s) => b(a(s))];
  return [key, (s) => escapers.reduce((value, escape) => escape(value), s)];
}

/** Go's parse/parse.go over the token list. */
export class Parser {
  readonly #tokens: TokenList;
  readonly #lastIndex: number;
  readonly #source: string;
  #i = 0;
  /** Variables in scope, as Go's `Tree.vars`. */
  readonly #vars: string[] = ["$"];
  #rangeDepth = 0;
  #depth = 0;

  constructor(tokens: TokenList, source: string) {
    this.#tokens = tokens;
    this.#lastIndex = tokens.length - 1;
    this.#source = source;
  }

  parse(): Node[] {
    const root: Node[] = [];
    while (this.#peek().type !== T.EOF) {
      const node = this.#textOrAction();
      if (isMarker(node)) {
        return this.#fail(node.pos, `unexpected {{${node.kind}}}`);
      }
      root.push(node);
    }
    return root;
  }

  #next(): Token {
    return this.#tokens.at(Math.min(this.#i++, this.#lastIndex));
  }

  #backup(): void {
    this.#i--;
  }

  #peek(): Token {
    return this.#tokens.at(Math.min(this.#i, this.#lastIndex));
  }

  #nextNonSpace(): Token {
    let token: Token;
    do token = this.#next(); while (token.type === T.Space);
    return token;
  }

  #peekNonSpace(): Token {
    const token = this.#nextNonSpace();
    this.#backup();
    return token;
  }

  #fail(pos: number, message: string): never {
    throw errorAt(this.#source, pos, message);
  }

  #unexpected(token: Token, context: string): never {
    if (token.type === T.Error) this.#fail(token.pos, token.val);
    this.#fail(token.pos, `unexpected ${tokenString(token)} in ${context}`);
  }

  #enter(pos: number, what: string): void {
    if (++this.#depth > MAX_DEPTH) {
      this.#fail(pos, `max ${what} depth exceeded`);
    }
  }

  /** Parses nodes up to `{{end}}` or `{{else}}`, which is returned apart. */
  #itemList(open: number, context: string): [Node[], Marker] {
    const list: Node[] = [];
    while (this.#peekNonSpace().type !== T.EOF) {
      const node = this.#textOrAction();
      if (isMarker(node)) return [list, node];
      list.push(node);
    }
    return this.#fail(
      open,
      `unexpected EOF: {{${context}}} has no matching {{end}}`,
    );
  }

  #textOrAction(): Node | Marker {
    const token = this.#nextNonSpace();
    switch (token.type) {
      case T.Text:
        return { kind: "text", text: token.val };
      case T.LeftDelim:
        return this.#action(token.pos);
    }
    return this.#unexpected(token, "input");
  }

  #action(open: number): Node | Marker {
    const token = this.#nextNonSpace();
    switch (token.type) {
      case T.Block:
      case T.Define:
      case T.Template:
        return this.#fail(token.pos, `{{${token.val}}} is not supported`);
      case T.Break:
      case T.Continue: {
        const kind = token.type === T.Break ? "break" : "continue";
        const next = this.#nextNonSpace();
        if (next.type !== T.RightDelim) this.#unexpected(next, `{{${kind}}}`);
        if (this.#rangeDepth === 0) {
          this.#fail(open, `{{${kind}}} outside {{range}}`);
        }
        return { kind };
      }
      case T.Else: {
        const next = this.#peekNonSpace();
        // "{{else if …" and "{{else with …" leave the keyword for the
        // enclosing control, which treats it as a nested control.
        if (next.type !== T.If && next.type !== T.With) {
          const end = this.#nextNonSpace();
          if (end.type !== T.RightDelim) this.#unexpected(end, "else");
        }
        return { kind: "else", pos: open };
      }
      case T.End: {
        const end = this.#nextNonSpace();
        if (end.type !== T.RightDelim) this.#unexpected(end, "end");
        return { kind: "end", pos: open };
      }
      case T.If:
        return this.#control("if", open, open);
      case T.Range:
        return this.#control("range", open, open);
      case T.With:
        return this.#control("with", open, open);
    }
    this.#backup();
    const pipe = this.#pipeline("command", T.RightDelim, open);
    const fast = fastPath(pipe);
    return {
      kind: "action",
      pipe,
      fastKey: fast?.[0] ?? null,
      fastEscape: fast?.[1] ?? null,
    };
  }

  /**
   * Parses the rest of an `if`, `with` or `range`. `open` is where this
   * control's action starts; `first` is where the whole `else if` chain
   * starts, which is where a missing `{{end}}` is reported.
   */
  #control(
    context: "if" | "with" | "range",
    open: number,
    first: number,
  ): BranchNode | RangeNode {
    this.#enter(open, "control nesting");
    const mark = this.#vars.length;
    const pipe = this.#pipeline(context, T.RightDelim, open);
    if (context === "range") this.#rangeDepth++;
    const [list, next] = this.#itemList(first, context);
    if (context === "range") this.#rangeDepth--;
    let elseList: Node[] | null = null;
    if (next.kind === "else") {
      const keyword = this.#peek().type;
      if (
        (context === "if" && keyword === T.If) ||
        (context === "with" && keyword === T.With)
      ) {
        this.#next();
        elseList = [this.#control(context, next.pos, first)];
      } else {
        const [rest, end] = this.#itemList(first, context);
        if (end.kind !== "end") {
          this.#fail(end.pos, "expected end; found {{else}}");
        }
        elseList = rest;
      }
    }
    this.#vars.length = mark;
    this.#depth--;
    return context === "range"
      ? { kind: "range", pipe, list, elseList }
      : { kind: context, pipe, list, elseList };
  }

  #pipeline(context: string, end: TokenType, open: number): Pipe {
    const pos = this.#peekNonSpace().pos;
    const decls: Decl[] = [];
    let isAssign = false;
    for (;;) {
      const v = this.#peekNonSpace();
      if (v.type !== T.Variable) break;
      const save = this.#i;
      this.#next();
      const next = this.#peekNonSpace();
      if (next.type === T.Assign || next.type === T.Declare) {
        isAssign = next.type === T.Assign;
        this.#nextNonSpace();
        decls.push({ name: v.val, pos: v.pos });
        this.#vars.push(v.val);
      } else if (next.type === T.Char && next.val === ",") {
        this.#nextNonSpace();
        decls.push({ name: v.val, pos: v.pos });
        this.#vars.push(v.val);
        if (context === "range" && decls.length < 2) {
          const after = this.#peekNonSpace();
          if (
            after.type === T.Variable || after.type === T.RightDelim ||
            after.type === T.RightParen
          ) {
            continue;
          }
          this.#fail(after.pos, "range can only initialize variables");
        }
        this.#fail(next.pos, `too many declarations in ${context}`);
      } else {
        // Not a declaration: the variable starts the first command.
        this.#i = save;
      }
      break;
    }
    const cmds: Command[] = [];
    for (;;) {
      const token = this.#nextNonSpace();
      if (token.type === end) break;
      switch (token.type) {
        case T.Bool:
        case T.CharConstant:
        case T.Complex:
        case T.Dot:
        case T.Field:
        case T.Identifier:
        case T.Number:
        case T.Nil:
        case T.RawString:
        case T.String:
        case T.Variable:
        case T.LeftParen:
          this.#backup();
          cmds.push(this.#command());
          continue;
      }
      this.#unexpected(token, context);
    }
    if (cmds.length === 0) this.#fail(open, `missing value for ${context}`);
    for (let i = 1; i < cmds.length; i++) {
      const cmd = cmds[i] as Command;
      switch (cmd.args[0]?.kind) {
        case "bool":
        case "dot":
        case "nil":
        case "number":
        case "string":
          this.#fail(
            cmd.pos,
            `non executable command in pipeline stage ${i + 1}`,
          );
      }
    }
    return { pos, decls, isAssign, cmds };
  }

  #command(): Command {
    const pos = this.#peekNonSpace().pos;
    const args: Arg[] = [];
    for (;;) {
      this.#peekNonSpace();
      const operand = this.#operand();
      if (operand !== null) args.push(operand);
      const token = this.#next();
      if (token.type === T.Space) continue;
      if (token.type === T.RightDelim || token.type === T.RightParen) {
        this.#backup();
      } else if (token.type !== T.Pipe) {
        this.#unexpected(token, "operand");
      }
      break;
    }
    if (args.length === 0) this.#fail(pos, "empty command");
    return { pos, args, rest: args.slice(1) };
  }

  #operand(): Arg | null {
    const node = this.#term();
    if (node === null || this.#peek().type !== T.Field) return node;
    const pos = this.#peek().pos;
    const fields: string[] = [];
    while (this.#peek().type === T.Field) {
      fields.push(this.#next().val.slice(1));
    }
    switch (node.kind) {
      case "field":
        return { ...node, idents: [...node.idents, ...fields] };
      case "variable":
        return { ...node, fields: [...node.fields, ...fields] };
      case "identifier":
      case "pipe":
        return { kind: "chain", pos: node.pos, node, fields };
    }
    return this.#fail(
      pos,
      `unexpected . after term ${quote(argString(node))}`,
    );
  }

  #term(): Arg | null {
    const token = this.#nextNonSpace();
    const pos = token.pos;
    switch (token.type) {
      case T.Identifier:
        if (!FUNCTIONS.has(token.val)) {
          this.#fail(pos, `function ${quote(token.val)} not defined`);
        }
        return { kind: "identifier", pos, name: token.val };
      case T.Dot:
        return { kind: "dot", pos };
      case T.Nil:
        return { kind: "nil", pos };
      case T.Variable:
        if (!this.#vars.includes(token.val)) {
          this.#fail(pos, `undefined variable ${quote(token.val)}`);
        }
        return { kind: "variable", pos, name: token.val, fields: [] };
      case T.Field:
        return { kind: "field", pos, idents: [token.val.slice(1)] };
      case T.Bool:
        return { kind: "bool", pos, value: token.val === "true" };
      case T.CharConstant:
      case T.Complex:
      case T.Number: {
        if (token.type === T.Number && DECIMAL_INT.test(token.val)) {
          const value = Number(token.val);
          if (Number.isSafeInteger(value)) {
            return { kind: "number", pos, value: value || 0, text: token.val };
          }
        }
        return this.#fail(
          pos,
          `unsupported number ${token.val}: only decimal integers up to 2^53 are supported`,
        );
      }
      case T.LeftParen: {
        this.#enter(pos, "expression");
        const pipe = this.#pipeline(
          "parenthesized pipeline",
          T.RightParen,
          pos,
        );
        this.#depth--;
        return { kind: "pipe", pos, pipe };
      }
      case T.String:
      case T.RawString: {
        const value = unquote(token);
        if (value === null) {
          this.#fail(pos, `invalid syntax in string literal ${token.val}`);
        }
        return { kind: "string", pos, value, text: token.val };
      }
    }
    this.#backup();
    return null;
  }
}
