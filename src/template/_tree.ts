/**
 * The parsed form of a template: Go's `text/template/parse` nodes for the
 * constructs a `map[string]string` template can use.
 *
 * @module
 */

import { TemplateError } from "../errors.ts";
import type { Escaper } from "./_escape.ts";
import type { GoComplex } from "./_values.ts";

/**
 * Builds the error for a source offset, counting lines as Go does (`\n`) and
 * columns in UTF-16 code units.
 */
export function errorAt(
  source: string,
  pos: number,
  message: string,
): TemplateError {
  let line = 1;
  let lineStart = 0;
  for (
    let i = source.indexOf("\n");
    i >= 0 && i < pos;
    i = source.indexOf("\n", i + 1)
  ) {
    line++;
    lineStart = i + 1;
  }
  return new TemplateError(message, line, pos - lineStart + 1);
}

/** The name Go-store gives the template it parses: `template.New("render")`. */
export const ROOT_NAME = "render";

/**
 * A parsed template: the named trees (the root under {@linkcode ROOT_NAME},
 * plus each `define` and `block`) and the source, for error positions.
 */
export class Tree {
  readonly templates: ReadonlyMap<string, readonly Node[]>;
  readonly source: string;
  /** Estimated heap bytes of the nodes, for caches. */
  readonly cost: number;
  constructor(
    templates: ReadonlyMap<string, readonly Node[]>,
    source: string,
    cost: number,
  ) {
    this.templates = templates;
    this.source = source;
    this.cost = cost;
  }
}

export type Node =
  | TextNode
  | FieldActionNode
  | ActionNode
  | BranchNode
  | RangeNode
  | TemplateNode
  | LoopControlNode;

export interface TextNode {
  readonly kind: "text";
  readonly text: string;
}

/**
 * The common `{{ .key }}`, `{{ .key | html }}` or `{{ html .key }}` action,
 * kept as the key and escaper only, so that a large template costs little.
 * When the key is missing or dot is not the map, the executor re-parses the
 * action from `open` (and keeps the result in `pipe`) to take the general
 * path with Go's exact behaviour.
 */
export interface FieldActionNode {
  readonly kind: "field";
  readonly key: string;
  readonly escapes: readonly Escaper[];
  /** Offset of the action's `{{`. */
  readonly open: number;
  pipe: Pipe | null;
}

export interface ActionNode {
  readonly kind: "action";
  readonly pipe: Pipe;
}

export interface BranchNode {
  readonly kind: "if" | "with";
  readonly pipe: Pipe;
  readonly list: readonly Node[];
  readonly elseList: readonly Node[] | null;
}

export interface RangeNode {
  readonly kind: "range";
  readonly pipe: Pipe;
  readonly list: readonly Node[];
  readonly elseList: readonly Node[] | null;
}

/** `{{template "name" pipeline}}`, and the call half of `{{block}}`. */
export interface TemplateNode {
  readonly kind: "template";
  readonly pos: number;
  readonly name: string;
  readonly pipe: Pipe | null;
}

export interface LoopControlNode {
  readonly kind: "break" | "continue";
}

export interface Pipe {
  readonly pos: number;
  readonly decls: readonly Decl[];
  readonly isAssign: boolean;
  readonly cmds: readonly Command[];
}

export interface Decl {
  readonly name: string;
  readonly pos: number;
}

export interface Command {
  readonly pos: number;
  /** Never empty. */
  readonly args: readonly Arg[];
}

export type Arg =
  | FieldArg
  | VariableArg
  | ChainArg
  | IdentifierArg
  | PipeArg
  | DotArg
  | NilArg
  | BoolArg
  | NumberArg
  | StringArg;

export interface FieldArg {
  readonly kind: "field";
  readonly pos: number;
  readonly idents: readonly string[];
}

export interface VariableArg {
  readonly kind: "variable";
  readonly pos: number;
  readonly name: string;
  readonly fields: readonly string[];
}

/** Fields of a function result or parenthesized pipeline: `(…).a.b`. */
export interface ChainArg {
  readonly kind: "chain";
  readonly pos: number;
  readonly node: IdentifierArg | PipeArg;
  readonly fields: readonly string[];
}

export interface IdentifierArg {
  readonly kind: "identifier";
  readonly pos: number;
  readonly name: string;
}

export interface PipeArg {
  readonly kind: "pipe";
  readonly pos: number;
  readonly pipe: Pipe;
}

export interface DotArg {
  readonly kind: "dot";
  readonly pos: number;
}

export interface NilArg {
  readonly kind: "nil";
  readonly pos: number;
}

export interface BoolArg {
  readonly kind: "bool";
  readonly pos: number;
  readonly value: boolean;
}

export interface NumberArg {
  readonly kind: "number";
  readonly pos: number;
  /** Go's ideal constant: `int`, `float64` or `complex128`. */
  readonly value: bigint | number | GoComplex;
  /** Set when Go accepts the literal but fails to use it (`… overflows int`). */
  readonly error: string | null;
  readonly text: string;
}

export interface StringArg {
  readonly kind: "string";
  readonly pos: number;
  readonly value: string;
  /** The literal as written, quotes included. */
  readonly text: string;
}

/** Go's `Node.String()`, for messages. */
export function argString(arg: Arg): string {
  switch (arg.kind) {
    case "field":
      return "." + arg.idents.join(".");
    case "variable":
      return [arg.name, ...arg.fields].join(".");
    case "chain":
      return argString(arg.node) + "." + arg.fields.join(".");
    case "identifier":
      return arg.name;
    case "pipe":
      return "(" + pipeString(arg.pipe) + ")";
    case "dot":
      return ".";
    case "nil":
      return "nil";
    case "bool":
      return arg.value ? "true" : "false";
    case "number":
    case "string":
      return arg.text;
  }
}

export function pipeString(pipe: Pipe): string {
  const decls = pipe.decls.length === 0
    ? ""
    : pipe.decls.map((decl) => decl.name).join(", ") +
      (pipe.isAssign ? " = " : " := ");
  return decls +
    pipe.cmds.map((cmd) => cmd.args.map(argString).join(" ")).join(" | ");
}
