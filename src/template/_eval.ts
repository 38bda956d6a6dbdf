/**
 * Go's `text/template/exec.go` for expressions: pipelines, commands,
 * fields, variables and function calls, plus the execution state they share
 * with the walker in `_exec.ts` (variables, output, budgets).
 *
 * @module
 */

import { ESCAPERS, jsonQuote, quote } from "./_escape.ts";
import { sprint, sprintf, sprintln } from "./_fmt.ts";
import {
  CallError,
  eq,
  FUNCS,
  type FuncSpec,
  index,
  le,
  len,
  lt,
  slice,
} from "./_funcs.ts";
import {
  type Arg,
  argString,
  type ChainArg,
  type Command,
  type Decl,
  errorAt,
  type IdentifierArg,
  type NumberArg,
  type Pipe,
  type VariableArg,
} from "./_tree.ts";
import { isMap, isTrue, typeName, type Value } from "./_values.ts";

export const MODE_DEFAULT = 0;
export const MODE_ZERO = 1;
export const MODE_ERROR = 2;

export const MODES: ReadonlyMap<string, number> = new Map([
  ["default", MODE_DEFAULT],
  ["zero", MODE_ZERO],
  ["error", MODE_ERROR],
]);

/** Limits on one execution; see `TemplateRenderOptions`. */
export interface Budget {
  readonly maxOutputBytes: number;
  readonly maxSteps: number;
}

const NO_ARGS: readonly Arg[] = [];

/** Strings are charged one step per this many UTF-16 units they cost. */
const UNITS_PER_STEP = 4;

/** The execution state and expression evaluator. */
export class Evaluator {
  readonly source: string;
  readonly mode: number;
  readonly budget: Budget;
  /** Go's variable stack, as two parallel arrays and a length. */
  readonly names: string[] = [];
  readonly values: Value[] = [];
  count = 0;
  /** Where the current template's variables start. */
  base = 0;
  out = "";
  steps = 0;
  /** The offset being executed, for budget errors (Go's `state.at`). */
  at = 0;

  constructor(source: string, mode: number, budget: Budget) {
    this.source = source;
    this.mode = mode;
    this.budget = budget;
  }

  fail(pos: number, message: string): never {
    throw errorAt(this.source, pos, message);
  }

  /** Counts one unit of work at `pos`. */
  step(pos: number): void {
    this.at = pos;
    if (++this.steps > this.budget.maxSteps) this.#overBudget();
  }

  /** Counts the work of making or copying a string of `units` units. */
  charge(units: number): void {
    this.steps += Math.floor(units / UNITS_PER_STEP);
    if (units > this.budget.maxOutputBytes) {
      this.fail(
        this.at,
        `a value of ${units} characters exceeds the output budget of ${this.budget.maxOutputBytes} bytes`,
      );
    }
    if (this.steps > this.budget.maxSteps) this.#overBudget();
  }

  /**
   * Counts an escaper's run from `input` to `output`: a character it had to
   * rewrite costs far more than a character copied.
   */
  chargeEscape(input: string, output: string): void {
    this.steps += (output.length - input.length) >> 1;
    this.charge(output.length);
  }

  #overBudget(): never {
    return this.fail(
      this.at,
      `execution exceeds the budget of ${this.budget.maxSteps} steps`,
    );
  }

  write(s: string): void {
    // Appending builds a rope: cheaper per character than building a value.
    this.steps += s.length >> 4;
    this.out += s;
    // Each UTF-16 unit is at least one UTF-8 byte.
    if (this.out.length > this.budget.maxOutputBytes) {
      this.fail(
        this.at,
        `output exceeds the budget of ${this.budget.maxOutputBytes} bytes`,
      );
    }
  }

  push(name: string, value: Value): void {
    this.names[this.count] = name;
    this.values[this.count] = value;
    this.count++;
  }

  #varValue(node: VariableArg): Value {
    for (let i = this.count - 1; i >= this.base; i--) {
      if (this.names[i] === node.name) return this.values[i] as Value;
    }
    return this.fail(node.pos, `undefined variable: ${node.name}`);
  }

  setVar(decl: Decl, value: Value): void {
    for (let i = this.count - 1; i >= this.base; i--) {
      if (this.names[i] === decl.name) {
        this.values[i] = value;
        return;
      }
    }
    this.fail(decl.pos, `undefined variable: ${decl.name}`);
  }

  #number(arg: NumberArg): Value {
    if (arg.error !== null) this.fail(arg.pos, arg.error);
    return arg.value;
  }

  evalPipeline(dot: Value, pipe: Pipe): Value {
    this.step(pipe.pos);
    let value: Value | undefined;
    for (const cmd of pipe.cmds) value = this.#evalCommand(dot, cmd, value);
    const result = value as Value;
    for (const decl of pipe.decls) {
      if (pipe.isAssign) this.setVar(decl, result);
      else this.push(decl.name, result);
    }
    return result;
  }

  /** `final` is the previous command's result, or `undefined` if none. */
  #evalCommand(dot: Value, cmd: Command, final: Value | undefined): Value {
    const first = cmd.args[0] as Arg;
    this.step(cmd.pos);
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
        return this.#evalFunction(dot, first, cmd.args, final);
      case "pipe":
        this.#notAFunction(first, cmd.args, final);
        return this.evalPipeline(dot, first.pipe);
      case "variable":
        return this.#evalVariable(first, cmd.args, final);
    }
    this.#notAFunction(first, cmd.args, final);
    switch (first.kind) {
      case "dot":
        return dot;
      case "nil":
        return this.fail(first.pos, "nil is not a command");
      case "number":
        return this.#number(first);
      case "bool":
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
      this.fail(
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
      if (this.mode === MODE_DEFAULT || this.mode === MODE_ZERO) return null;
      return this.fail(node.pos, `nil data; no entry for key ${quote(name)}`);
    }
    if (isMap(receiver)) {
      if (args.length > 1 || final !== undefined) {
        this.fail(node.pos, `${name} is not a method but has arguments`);
      }
      const value = receiver.get(name);
      if (value !== undefined) return value;
      if (this.mode === MODE_DEFAULT) return null;
      if (this.mode === MODE_ZERO) return "";
      return this.fail(node.pos, `map has no entry for key ${quote(name)}`);
    }
    return this.fail(
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
      ? this.evalPipeline(dot, chain.node.pipe)
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
        return this.evalPipeline(dot, arg.pipe);
      case "identifier":
        return this.#evalFunction(dot, arg, NO_ARGS, undefined);
      case "chain":
        return this.#evalChain(dot, arg, NO_ARGS, undefined);
      case "number":
        return this.#number(arg);
      case "bool":
      case "string":
        return arg.value;
    }
  }

  /** Go's `evalArg` for a `string` parameter. */
  #evalStringArg(dot: Value, arg: Arg): string {
    switch (arg.kind) {
      case "nil":
        return this.fail(arg.pos, "cannot assign nil to string");
      case "bool":
      case "number":
        return this.fail(arg.pos, `expected string; found ${argString(arg)}`);
      case "string":
        return arg.value;
    }
    return this.#validateString(this.#evalArg(dot, arg), arg.pos);
  }

  /** Go's `validateType` for a `string` parameter. */
  #validateString(value: Value, pos: number): string {
    if (typeof value === "string") return value;
    if (value === null) {
      return this.fail(pos, "invalid value; expected string");
    }
    return this.fail(
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
    cmdArgs: readonly Arg[],
    final: Value | undefined,
  ): Value {
    const args = cmdArgs.length > 1 ? cmdArgs.slice(1) : NO_ARGS;
    const spec = FUNCS.get(fn.name) as FuncSpec;
    const count = args.length + (final === undefined ? 0 : 1);
    if (spec.variadic) {
      if (count < spec.fixed) {
        this.fail(
          fn.pos,
          `wrong number of args for ${fn.name}: want at least ${spec.fixed} got ${args.length}`,
        );
      }
    } else if (count !== spec.fixed) {
      this.fail(
        fn.pos,
        `wrong number of args for ${fn.name}: want ${spec.fixed} got ${count}`,
      );
    }
    if (fn.name === "and" || fn.name === "or") {
      return this.#andOr(dot, fn.name === "or", args, final);
    }
    const values: Value[] = [];
    for (const [i, arg] of args.entries()) {
      values.push(
        i < spec.stringParams
          ? this.#evalStringArg(dot, arg)
          : this.#evalArg(dot, arg),
      );
    }
    if (final !== undefined) {
      values.push(
        args.length < spec.stringParams
          ? this.#validateString(final, fn.pos)
          : final,
      );
    }
    this.at = fn.pos;
    const result = this.#call(fn.name, values);
    if (result instanceof CallError) {
      return this.fail(fn.pos, `error calling ${fn.name}: ${result.message}`);
    }
    if (typeof result === "string") this.charge(result.length);
    return result;
  }

  /** Go's `and` and `or`: the first argument that decides, else the last. */
  #andOr(
    dot: Value,
    stopOn: boolean,
    args: readonly Arg[],
    final: Value | undefined,
  ): Value {
    let value: Value = null;
    for (const arg of args) {
      value = this.#evalArg(dot, arg);
      if (isTrue(value) === stopOn) return value;
    }
    return final === undefined ? value : final;
  }

  /** Go's `fmt` printers, held to the output budget. */
  #fmt(name: string, values: Value[]): string {
    const max = this.budget.maxOutputBytes;
    try {
      if (name === "print") return sprint(values, max);
      if (name === "println") return sprintln(values, max);
      return sprintf(values[0] as string, values.slice(1), max);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      return this.fail(
        this.at,
        `a value built by ${name} exceeds the output budget of ${max} bytes`,
      );
    }
  }

  #call(name: string, values: Value[]): Value | CallError {
    for (const value of values) {
      if (typeof value === "string") this.charge(value.length);
      // Printing or comparing a map sorts and copies its entries.
      else if (isMap(value)) this.charge(value.size * 64);
    }
    const [a = null, b = null] = values;
    switch (name) {
      case "html":
      case "js":
      case "urlquery": {
        const input = evalArgs(values);
        this.charge(input.length);
        const output = (ESCAPERS.get(name) as (s: string) => string)(input);
        this.chargeEscape(input, output);
        return output;
      }
      case "print":
      case "println":
      case "printf":
        return this.#fmt(name, values);
      case "json": {
        const output = jsonQuote(a as string);
        this.chargeEscape(a as string, output);
        return output;
      }
      case "not":
        return !isTrue(a);
      case "len":
        return len(a);
      case "index":
        return index(a, values.slice(1));
      case "slice":
        return slice(a, values.slice(1));
      case "eq":
        return eq(a, values.slice(1));
      case "ne":
        return not(eq(a, [b]));
      case "lt":
        return lt(a, b);
      case "le":
        return le(a, b);
      case "gt":
        return not(le(a, b));
      case "ge":
        return not(lt(a, b));
    }
    return new CallError(`${quote(name)} is not a defined function`);
  }
}

function not(result: boolean | CallError): boolean | CallError {
  return typeof result === "boolean" ? !result : result;
}

/**
 * Go's `evalArgs` for `html`, `js` and `urlquery`: `fmt.Sprint` of the
 * arguments, a nil one printed as `<no value>`.
 */
function evalArgs(values: readonly Value[]): string {
  if (values.length === 1 && typeof values[0] === "string") return values[0];
  return sprint(values.map((value) => value === null ? "<no value>" : value));
}
