/**
 * The parsed form of a template: Go's `text/template/parse` nodes for the
 * constructs a `map[string]string` template can use.
 *
 * @module
 */

import { TemplateError } from "../errors.ts";
import type { Escaper } from "./_escape.ts";

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

/** A parsed template: its nodes and the source, for error positions. */
export class Tree {
  readonly nodes: readonly Node[];
  readonly source: string;
  constructor(nodes: readonly Node[], source: string) {
    this.nodes = nodes;
    this.source = source;
  }
}

export type Node =
  | TextNode
  | ActionNode
  | BranchNode
  | RangeNode
  | LoopControlNode;

export interface TextNode {
  readonly kind: "text";
  readonly text: string;
}

export interface ActionNode {
  readonly kind: "action";
  readonly pipe: Pipe;
  /**
   * For the common `{{ .key }}`, `{{ .key | html }}` and `{{ html .key }}`
   * shapes, the key and escaper, so that execution can skip the general
   * evaluation when the key is present.
   */
  readonly fastKey: string | null;
  readonly fastEscape: Escaper | null;
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

export interface LoopControlNode {
  readonly kind: "break" | "continue";
}

/** `{{end}}` or `{{else}}`, which end a list rather than belong to it. */
export interface Marker {
  readonly kind: "end" | "else";
  /** Offset of the action's `{{`. */
  readonly pos: number;
}

export function isMarker(node: Node | Marker): node is Marker {
  return node.kind === "end" || node.kind === "else";
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
  /** `args` without the first, i.e. a function's arguments. */
  readonly rest: readonly Arg[];
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
  readonly value: number;
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
