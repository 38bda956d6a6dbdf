/**
 * Go's `text/template/exec.go`: walks a parsed tree with data.
 *
 * @module
 */

import { utf8Length } from "../_utf8.ts";
import { type Escaper, ESCAPERS, jsonQuote, quote } from "./_escape.ts";
import { equals, index, IndexError, numberOf } from "./_funcs.ts";
import {
  type Arg,
  argString,
  type ChainArg,
  type Command,
  type Decl,
  errorAt,
  type IdentifierArg,
  type Node,
  type Pipe,
  type RangeNode,
  type VariableArg,
} from "./_tree.ts";
import {
  ByteValue,
  formatValue,
  isMap,
  isTrue,
  typeName,
  type Value,
} from "./_values.ts";

// Execution: Go's exec.go and funcs.go over the value kinds a
// map[string]string template can produce.

export const MODES: ReadonlyMap<string, number> = new Map([
  ["default", 0],
  ["zero", 1],
  ["error", 2],
]);
const MODE_DEFAULT = 0;
const MODE_ZERO = 1;

/** What walking a list did: ran to its end, or met `break` or `continue`. */
const DONE = 0;
const BREAK = 1;
const CONTINUE = 2;

const NO_ARGS: readonly Arg[] = [];

export class Executor {
  readonly #source: string;
  readonly #mode: number;
  #out = "";
  /** Go's variable stack, as two parallel arrays and a length. */
  readonly #names: string[] = [];
  readonly #values: Value[] = [];
  #count = 0;

  constructor(source: string, mode: number) {
    this.#source = source;
    this.#mode = mode;
  }

  run(nodes: readonly Node[], data: ReadonlyMap<string, string>): string {
    this.#push("$", data);
    this.#walkList(data, nodes);
    return this.#out;
  }

  #fail(pos: number, message: string): never {
    throw errorAt(this.#source, pos, message);
  }

  #push(name: string, value: Value): void {
    this.#names[this.#count] = name;
    this.#values[this.#count] = value;
    this.#count++;
  }

  #varValue(node: VariableArg): Value {
    for (let i = this.#count - 1; i >= 0; i--) {
      if (this.#names[i] === node.name) return this.#values[i] as Value;
    }
    return this.#fail(node.pos, `undefined variable: ${node.name}`);
  }

  #setVar(decl: Decl, value: Value): void {
    for (let i = this.#count - 1; i >= 0; i--) {
      if (this.#names[i] === decl.name) {
        this.#values[i] = value;
        return;
      }
    }
    this.#fail(decl.pos, `undefined variable: ${decl.name}`);
  }

  #walkList(dot: Value, list: readonly Node[]): number {
    for (const node of list) {
      switch (node.kind) {
        case "text":
          this.#out += node.text;
          continue;
        case "action": {
          if (node.fastKey !== null && isMap(dot)) {
            const value = dot.get(node.fastKey);
            if (value !== undefined) {
              this.#out += node.fastEscape === null
                ? value
                : node.fastEscape(value);
              continue;
            }
          }
          const value = this.#evalPipeline(dot, node.pipe);
          if (node.pipe.decls.length === 0) this.#out += formatValue(value);
          continue;
        }
        case "if":
        case "with": {
          const mark = this.#count;
          const value = this.#evalPipeline(dot, node.pipe);
          let status = DONE;
          if (isTrue(value)) {
            status = this.#walkList(
              node.kind === "with" ? value : dot,
              node.list,
            );
          } else if (node.elseList !== null) {
            status = this.#walkList(dot, node.elseList);
          }
          this.#count = mark;
          if (status !== DONE) return status;
          continue;
        }
        case "range": {
          const status = this.#walkRange(dot, node);
          if (status !== DONE) return status;
          continue;
        }
        case "break":
          return BREAK;
        case "continue":
          return CONTINUE;
      }
    }
    return DONE;
  }

  #walkRange(dot: Value, node: RangeNode): number {
    const mark = this.#count;
    const value = this.#evalPipeline(dot, node.pipe);
    const inner = this.#count;
    let ran = false;
    if (isMap(value)) {
      for (const [key, item] of value) {
        ran = true;
        this.#setRangeVars(node.pipe, key, item);
        const status = this.#walkList(item, node.list);
        this.#count = inner;
        if (status === BREAK) break;
      }
    } else if (typeof value === "number" || value instanceof ByteValue) {
      if (node.pipe.decls.length > 1) {
        this.#fail(
          (node.pipe.cmds[0] as Command).pos,
          `can't use ${
            formatValue(value)
          } to iterate over more than one variable`,
        );
      }
      const count = numberOf(value);
      for (let i = 0; i < count; i++) {
        ran = true;
        const item = typeof value === "number" ? i : new ByteValue(i);
        this.#setRangeVars(node.pipe, null, item);
        const status = this.#walkList(item, node.list);
        this.#count = inner;
        if (status === BREAK) break;
      }
    } else if (value !== null) {
      this.#fail(
        (node.pipe.cmds[0] as Command).pos,
        `range can't iterate over ${formatValue(value)}`,
      );
    }
    let status = DONE;
    if (!ran && node.elseList !== null) {
      status = this.#walkList(dot, node.elseList);
    }
    this.#count = mark;
    return status;
  }

  /** Go's `oneIteration` variable updates. */
  #setRangeVars(pipe: Pipe, index: Value, item: Value): void {
    const decls = pipe.decls;
    if (decls.length === 0) return;
    if (pipe.isAssign) {
      if (decls.length > 1) {
        this.#setVar(decls[0] as Decl, index);
        this.#setVar(decls[1] as Decl, item);
      } else {
        this.#setVar(decls[0] as Decl, item);
      }
      return;
    }
    this.#values[this.#count - 1] = item;
    if (decls.length > 1) this.#values[this.#count - 2] = index;
  }

  #evalPipeline(dot: Value, pipe: Pipe): Value {
    let value: Value | undefined;
    for (const cmd of pipe.cmds) value = this.#evalCommand(dot, cmd, value);
    const result = value as Value;
    for (const decl of pipe.decls) {
      if (pipe.isAssign) this.#setVar(decl, result);
      else this.#push(decl.name, result);
    }
    return result;
  }

  /** `final` is the previous command's result, or `undefined` if none. */
  #evalCommand(dot: Value, cmd: Command, final: Value | undefined): Value {
    const first = cmd.args[0] as Arg;
    switch (first.kind) {
      case "field":
        return this.#evalFieldChain(
          dot,
          first,
          first.idents,
          cmd.args,
          final,
        );
      case "chain":
        return this.#evalChain(dot, first, cmd.args, final);
      case "identifier":
        return this.#evalFunction(dot, first, cmd.rest, final);
      case "pipe":
        this.#notAFunction(first, cmd.args, final);
        return this.#evalPipeline(dot, first.pipe);
      case "variable":
        return this.#evalVariable(first, cmd.args, final);
    }
    this.#notAFunction(first, cmd.args, final);
    switch (first.kind) {
      case "dot":
        return dot;
      case "nil":
        return this.#fail(first.pos, "nil is not a command");
      case "bool":
      case "number":
      case "string":
        return first.value;
    }
  }

  #notAFunction(
    first: Arg,
    args: readonly Arg[],
    final: Value | undefined,
  ): void {
    if (args.length > 1 || final !== undefined) {
      this.#fail(
        first.pos,
        `can't give argument to non-function ${argString(first)}`,
      );
    }
  }

  #evalFieldChain(
    receiver: Value,
    node: Arg,
    idents: readonly string[],
    args: readonly Arg[],
    final: Value | undefined,
  ): Value {
    const last = idents.length - 1;
    for (let i = 0; i < last; i++) {
      receiver = this.#evalField(
        idents[i] as string,
        node,
        NO_ARGS,
        undefined,
        receiver,
      );
    }
    return this.#evalField(idents[last] as string, node, args, final, receiver);
  }

  #evalField(
    name: string,
    node: Arg,
    args: readonly Arg[],
    final: Value | undefined,
    receiver: Value,
  ): Value {
    if (receiver === null) {
      if (this.#mode === MODE_DEFAULT || this.#mode === MODE_ZERO) return null;
      return this.#fail(node.pos, `nil data; no entry for key ${quote(name)}`);
    }
    if (isMap(receiver)) {
      if (args.length > 1 || final !== undefined) {
        this.#fail(node.pos, `${name} is not a method but has arguments`);
      }
      const value = receiver.get(name);
      if (value !== undefined) return value;
      if (this.#mode === MODE_DEFAULT) return null;
      if (this.#mode === MODE_ZERO) return "";
      return this.#fail(node.pos, `map has no entry for key ${quote(name)}`);
    }
    return this.#fail(
      node.pos,
      `can't evaluate field ${name} in type ${typeName(receiver)}`,
    );
  }

  #evalChain(
    dot: Value,
    chain: ChainArg,
    args: readonly Arg[],
    final: Value | undefined,
  ): Value {
    const receiver = chain.node.kind === "pipe"
      ? this.#evalPipeline(dot, chain.node.pipe)
      : this.#evalFunction(dot, chain.node, NO_ARGS, undefined);
    return this.#evalFieldChain(receiver, chain, chain.fields, args, final);
  }

  #evalVariable(
    node: VariableArg,
    args: readonly Arg[],
    final: Value | undefined,
  ): Value {
    const value = this.#varValue(node);
    if (node.fields.length === 0) {
      this.#notAFunction(node, args, final);
      return value;
    }
    return this.#evalFieldChain(value, node, node.fields, args, final);
  }

  /**
   * Go's `evalArg` for a parameter of type `any` or `reflect.Value`, which
   * accept every value as it is.
   */
  #evalArg(dot: Value, arg: Arg): Value {
    switch (arg.kind) {
      case "dot":
        return dot;
      case "nil":
        return null;
      case "field":
        return this.#evalFieldChain(dot, arg, arg.idents, NO_ARGS, undefined);
      case "variable":
        return this.#evalVariable(arg, NO_ARGS, undefined);
      case "pipe":
        return this.#evalPipeline(dot, arg.pipe);
      case "identifier":
        return this.#evalFunction(dot, arg, NO_ARGS, undefined);
      case "chain":
        return this.#evalChain(dot, arg, NO_ARGS, undefined);
      case "bool":
      case "number":
      case "string":
        return arg.value;
    }
  }

  /** Go's `evalArg` for a `string` parameter. */
  #evalStringArg(dot: Value, arg: Arg): string {
    switch (arg.kind) {
      case "nil":
        return this.#fail(arg.pos, "cannot assign nil to string");
      case "bool":
      case "number":
        return this.#fail(arg.pos, `expected string; found ${argString(arg)}`);
      case "string":
        return arg.value;
    }
    return this.#validateString(this.#evalArg(dot, arg), arg.pos);
  }

  /** Go's `validateType` for a `string` parameter. */
  #validateString(value: Value, pos: number): string {
    if (typeof value === "string") return value;
    if (value === null) {
      return this.#fail(pos, "invalid value; expected string");
    }
    return this.#fail(
      pos,
      `wrong type for value; expected string; got ${typeName(value)}`,
    );
  }

  /**
   * Calls a function with its argument nodes and, when it is not the first
   * command of a pipeline, the previous command's result as the last
   * argument. Arity is checked before any argument is evaluated, as in Go.
   */
  #evalFunction(
    dot: Value,
    fn: IdentifierArg,
    args: readonly Arg[],
    final: Value | undefined,
  ): Value {
    const name = fn.name;
    const count = args.length + (final === undefined ? 0 : 1);
    switch (name) {
      case "json":
        this.#checkArity(fn, count, 1);
        return jsonQuote(
          args.length === 1
            ? this.#evalStringArg(dot, args[0] as Arg)
            : this.#validateString(final as Value, fn.pos),
        );
      case "html":
      case "js":
      case "urlquery": {
        this.#checkArity(fn, count, 1);
        const escape = ESCAPERS.get(name) as Escaper;
        return escape(formatValue(this.#onlyArg(dot, args, final)));
      }
      case "not":
        this.#checkArity(fn, count, 1);
        return !isTrue(this.#onlyArg(dot, args, final));
      case "len":
        this.#checkArity(fn, count, 1);
        return this.#len(fn, this.#onlyArg(dot, args, final));
      case "and":
      case "or": {
        this.#checkVariadicArity(fn, count, args.length);
        // Short-circuits: returns the first argument that decides, else the
        // last one.
        const stopOn = name === "or";
        let value: Value = null;
        for (const arg of args) {
          value = this.#evalArg(dot, arg);
          if (isTrue(value) === stopOn) return value;
        }
        return final === undefined ? value : final;
      }
      case "eq": {
        this.#checkVariadicArity(fn, count, args.length);
        const [first, ...others] = this.#allArgs(dot, args, final);
        const result = equals(first as Value, others);
        return typeof result === "string"
          ? this.#callError(fn, result)
          : result;
      }
      case "ne": {
        this.#checkArity(fn, count, 2);
        const [first, second] = this.#allArgs(dot, args, final);
        const result = equals(first as Value, [second as Value]);
        return typeof result === "string"
          ? this.#callError(fn, result)
          : !result;
      }
      case "index": {
        this.#checkVariadicArity(fn, count, args.length);
        const [item, ...indexes] = this.#allArgs(dot, args, final);
        const result = index(item as Value, indexes);
        return result instanceof IndexError
          ? this.#callError(fn, result.message)
          : result;
      }
    }
    // The parser lets only the functions above through.
    return this.#fail(fn.pos, `${quote(name)} is not a defined function`);
  }

  #len(fn: IdentifierArg, value: Value): Value {
    if (typeof value === "string") return utf8Length(value);
    if (isMap(value)) return value.size;
    // Go's length() asks an invalid reflect.Value for its type, which
    // panics; the panic becomes this error.
    return this.#callError(
      fn,
      value === null
        ? "reflect: call of reflect.Value.Type on zero Value"
        : `len of type ${typeName(value)}`,
    );
  }

  #checkArity(fn: IdentifierArg, count: number, want: number): void {
    if (count !== want) {
      this.#fail(
        fn.pos,
        `wrong number of args for ${fn.name}: want ${want} got ${count}`,
      );
    }
  }

  /** Go reports the count without the piped value here. */
  #checkVariadicArity(fn: IdentifierArg, count: number, given: number): void {
    if (count < 1) {
      this.#fail(
        fn.pos,
        `wrong number of args for ${fn.name}: want at least 1 got ${given}`,
      );
    }
  }

  #onlyArg(dot: Value, args: readonly Arg[], final: Value | undefined): Value {
    return args.length === 1
      ? this.#evalArg(dot, args[0] as Arg)
      : final as Value;
  }

  #allArgs(
    dot: Value,
    args: readonly Arg[],
    final: Value | undefined,
  ): Value[] {
    const values: Value[] = [];
    for (const arg of args) values.push(this.#evalArg(dot, arg));
    if (final !== undefined) values.push(final);
    return values;
  }

  #callError(fn: IdentifierArg, message: string): never {
    return this.#fail(fn.pos, `error calling ${fn.name}: ${message}`);
  }
}
