/**
 * Go's `text/template/parse` for pipelines: declarations, commands,
 * operands and terms, over a cursor on the token list. Control structures
 * are parsed by `_parser.ts`.
 *
 * @module
 */

import { type Escaper, ESCAPERS, quote } from "./_escape.ts";
import { FUNCS } from "./_funcs.ts";
import { T, type Token, type TokenList, type TokenType } from "./_lexer.ts";
import {
  type NumberResult,
  parseChar,
  parseComplex,
  parseNumber,
  unquote,
} from "./_literals.ts";
import {
  type Arg,
  argString,
  type Command,
  type Decl,
  errorAt,
  type Pipe,
} from "./_tree.ts";

/**
 * Parenthesized pipelines nest at most this deep: as deep as Go renders
 * them. Parsing and evaluating them recurses, and the JavaScript stack
 * holds about 1,750 levels at the top of a call (1,000 leave room for a
 * deep caller); past the limit a TemplateError says so instead of a stack
 * overflow. Go 1.19 has no limit; current Go stops at 10,000.
 */
export const MAX_EXPRESSION_DEPTH = 1_000;

/** Go's `item.String()`, for "unexpected …" messages. */
function tokenString(token: Token): string {
  if (token.type === T.EOF) return "EOF";
  if (token.type > T.Keyword) return `<${token.val}>`;
  const chars = [...token.val];
  return chars.length > 10
    ? quote(chars.slice(0, 10).join("")) + "..."
    : quote(token.val);
}

/** A position in the token list, with the parse state pipelines need. */
export class Cursor {
  readonly tokens: TokenList;
  readonly source: string;
  readonly #lastIndex: number;
  i = 0;
  /** Variables in scope, as Go's `Tree.vars`. */
  vars: string[] = ["$"];
  /** Estimated heap bytes of the nodes made so far. */
  cost = 0;
  depth = 0;

  constructor(tokens: TokenList, source: string, start = 0) {
    this.tokens = tokens;
    this.source = source;
    this.#lastIndex = tokens.length - 1;
    this.i = start;
  }

  next(): Token {
    return this.tokens.at(Math.min(this.i++, this.#lastIndex));
  }

  backup(): void {
    this.i--;
  }

  peek(): Token {
    return this.tokens.at(Math.min(this.i, this.#lastIndex));
  }

  nextNonSpace(): Token {
    const last = this.#lastIndex;
    while (this.tokens.type(Math.min(this.i, last)) === T.Space) this.i++;
    return this.next();
  }

  peekNonSpace(): Token {
    const token = this.nextNonSpace();
    this.backup();
    return token;
  }

  fail(pos: number, message: string): never {
    throw errorAt(this.source, pos, message);
  }

  unexpected(token: Token, context: string): never {
    if (token.type === T.Error) this.fail(token.pos, token.val);
    this.fail(token.pos, `unexpected ${tokenString(token)} in ${context}`);
  }

  /** Go's `expect`: the next non-space token must be of `type`. */
  expect(type: TokenType, context: string): Token {
    const token = this.nextNonSpace();
    if (token.type !== type) this.unexpected(token, context);
    return token;
  }
}

/** Go's `Tree.pipeline`: declarations, then commands up to `end`. */
export function pipeline(
  c: Cursor,
  context: string,
  end: TokenType,
  open: number,
): Pipe {
  const pos = c.peekNonSpace().pos;
  const decls: Decl[] = [];
  const isAssign = declarations(c, context, decls);
  const cmds: Command[] = [];
  for (;;) {
    const token = c.nextNonSpace();
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
        c.backup();
        cmds.push(command(c));
        continue;
    }
    c.unexpected(token, context);
  }
  if (cmds.length === 0) c.fail(open, `missing value for ${context}`);
  for (let i = 1; i < cmds.length; i++) {
    const cmd = cmds[i] as Command;
    switch (cmd.args[0]?.kind) {
      case "bool":
      case "dot":
      case "nil":
      case "number":
      case "string":
        c.fail(
          cmd.pos,
          `non executable command in pipeline stage ${i + 1}`,
        );
    }
  }
  return { pos, decls: fit(decls), isAssign, cmds: fit(cmds) };
}

/** The pipeline's `$x :=`/`$x =` (or `$k, $v :=` in range); `isAssign`. */
function declarations(c: Cursor, context: string, decls: Decl[]): boolean {
  let isAssign = false;
  for (;;) {
    const v = c.peekNonSpace();
    if (v.type !== T.Variable) break;
    const save = c.i;
    c.next();
    const next = c.peekNonSpace();
    if (next.type === T.Assign || next.type === T.Declare) {
      isAssign = next.type === T.Assign;
      c.nextNonSpace();
      decls.push({ name: v.val, pos: v.pos });
      c.vars.push(v.val);
    } else if (next.type === T.Char && next.val === ",") {
      c.nextNonSpace();
      decls.push({ name: v.val, pos: v.pos });
      c.vars.push(v.val);
      if (context === "range" && decls.length < 2) {
        const after = c.peekNonSpace();
        if (
          after.type === T.Variable || after.type === T.RightDelim ||
          after.type === T.RightParen
        ) {
          continue;
        }
        c.fail(after.pos, "range can only initialize variables");
      }
      c.fail(next.pos, `too many declarations in ${context}`);
    } else {
      // Not a declaration: the variable starts the first command.
      c.i = save;
    }
    break;
  }
  return isAssign;
}

function command(c: Cursor): Command {
  const pos = c.peekNonSpace().pos;
  const args: Arg[] = [];
  for (;;) {
    c.peekNonSpace();
    const arg = operand(c);
    if (arg !== null) args.push(arg);
    const token = c.next();
    if (token.type === T.Space) continue;
    if (token.type === T.RightDelim || token.type === T.RightParen) {
      c.backup();
    } else if (token.type !== T.Pipe) {
      c.unexpected(token, "operand");
    }
    break;
  }
  if (args.length === 0) c.fail(pos, "empty command");
  c.cost += 48 + 8 * args.length;
  return { pos, args: fit(args) };
}

function operand(c: Cursor): Arg | null {
  const node = term(c);
  if (node === null || c.peek().type !== T.Field) return node;
  const pos = c.peek().pos;
  const fields: string[] = [];
  while (c.peek().type === T.Field) {
    fields.push(c.next().val.slice(1));
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
  return c.fail(
    pos,
    `unexpected . after term ${quote(argString(node))}`,
  );
}

function term(c: Cursor): Arg | null {
  const token = c.nextNonSpace();
  const pos = token.pos;
  c.cost += 48;
  switch (token.type) {
    case T.Identifier:
      if (!FUNCS.has(token.val)) {
        c.fail(pos, `function ${quote(token.val)} not defined`);
      }
      return { kind: "identifier", pos, name: token.val };
    case T.Dot:
      return { kind: "dot", pos };
    case T.Nil:
      return { kind: "nil", pos };
    case T.Variable:
      if (!c.vars.includes(token.val)) {
        c.fail(pos, `undefined variable ${quote(token.val)}`);
      }
      return { kind: "variable", pos, name: token.val, fields: NO_FIELDS };
    case T.Field:
      return { kind: "field", pos, idents: [token.val.slice(1)] };
    case T.Bool:
      return { kind: "bool", pos, value: token.val === "true" };
    case T.CharConstant:
    case T.Complex:
    case T.Number: {
      const result: NumberResult = token.type === T.Number
        ? parseNumber(token.val)
        : token.type === T.Complex
        ? parseComplex(token.val)
        : parseChar(token.val);
      if ("syntax" in result) return c.fail(pos, result.syntax);
      return { kind: "number", pos, ...result, text: token.val };
    }
    case T.LeftParen: {
      if (++c.depth > MAX_EXPRESSION_DEPTH) {
        c.fail(pos, "max expression depth exceeded");
      }
      const pipe = pipeline(c, "parenthesized pipeline", T.RightParen, pos);
      c.depth--;
      return { kind: "pipe", pos, pipe };
    }
    case T.String:
    case T.RawString: {
      const value = unquote(token.val);
      if (value === null) {
        c.fail(pos, `invalid syntax in string literal ${token.val}`);
      }
      return { kind: "string", pos, value, text: token.val };
    }
  }
  c.backup();
  return null;
}

const NO_FIELDS: readonly string[] = [];
const EMPTY: readonly never[] = [];

/**
 * An array the size of its contents: V8 grows a pushed-to array in steps,
 * and a tree holds millions of small ones.
 */
export function fit<T>(array: T[]): readonly T[] {
  return array.length === 0 ? EMPTY : array.slice();
}

/** Escaper chains, one array per sequence of names, shared by every action. */
const CHAINS = new Map<string, readonly Escaper[]>();

function chain(names: readonly string[]): readonly Escaper[] {
  const key = names.join("|");
  let escapers = CHAINS.get(key);
  if (escapers === undefined) {
    escapers = names.map((name) => ESCAPERS.get(name) as Escaper);
    CHAINS.set(key, escapers);
  }
  return escapers;
}

/**
 * Recognises `{{ .key }}`, `{{ .key | html | … }}` and `{{ html .key | … }}`:
 * the key and the escaper chain, or `null` for any other pipeline.
 */
export function fastPath(pipe: Pipe): [string, readonly Escaper[]] | null {
  if (pipe.decls.length > 0) return null;
  const names: string[] = [];
  let field: Arg | undefined;
  for (const [i, cmd] of pipe.cmds.entries()) {
    const [head, arg, more] = cmd.args;
    if (i === 0 && head?.kind === "field" && arg === undefined) {
      field = head;
      continue;
    }
    if (head?.kind !== "identifier" || !ESCAPERS.has(head.name)) return null;
    if (more !== undefined) return null;
    if (i === 0) {
      if (arg?.kind !== "field") return null;
      field = arg;
    } else if (arg !== undefined) {
      return null;
    }
    names.push(head.name);
  }
  if (field?.kind !== "field" || field.idents.length !== 1) return null;
  return [field.idents[0] as string, chain(names)];
}
