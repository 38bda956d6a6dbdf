/**
 * Go's `strconv.FormatFloat(v, verb, prec, 64)` for the verbs `fmt` uses:
 * `b e E f g G x X`, with precision -1 meaning "shortest that round-trips".
 *
 * Fixed precisions round the exact binary value (built with `bigint`, so
 * `%.30f` and `%f` of 1e300 print every digit as Go does), halves to even.
 * The shortest digits come from the engine's own shortest round-trip
 * conversion, which picks the same digits as Go's Ryu implementation.
 *
 * @module
 */

/** Decimal digits without leading or trailing zeros, point after `dp` digits. */
interface Decimal {
  d: string;
  dp: number;
}

const view = new DataView(new ArrayBuffer(8));

/** Sign, unbiased exponent and mantissa (implicit bit added) of a finite float. */
function decompose(v: number): { neg: boolean; exp: number; mant: bigint } {
  view.setFloat64(0, v);
  const bits = view.getBigUint64(0);
  const neg = bits >> 63n === 1n;
  let exp = Number((bits >> 52n) & 0x7ffn);
  let mant = bits & 0xfffffffffffffn;
  if (exp === 0) exp++;
  else mant |= 1n << 52n;
  return { neg, exp: exp - 1023, mant };
}

const pow5: bigint[] = [1n];
function fivePow(n: number): bigint {
  for (let i = pow5.length; i <= n; i++) {
    pow5.push((pow5[i - 1] as bigint) * 5n);
  }
  return pow5[n] as bigint;
}

function trim(d: string, dp: number): Decimal {
  let end = d.length;
  while (end > 0 && d.charCodeAt(end - 1) === 0x30) end--;
  return end === 0 ? { d: "", dp: 0 } : { d: d.slice(0, end), dp };
}

/** The exact decimal value of mant × 2^exp2. */
function exactDecimal(mant: bigint, exp2: number): Decimal {
  if (mant === 0n) return { d: "", dp: 0 };
  if (exp2 >= 0) {
    const s = (mant << BigInt(exp2)).toString();
    return trim(s, s.length);
  }
  const s = (mant * fivePow(-exp2)).toString();
  return trim(s, s.length + exp2);
}

/** The shortest digits that read back as `v` (positive, finite, non-zero). */
function shortestDecimal(v: number): Decimal {
  return parseDecimal(String(v));
}

/** Rounds to `nd` digits, an exact half to even (Go's `decimal.Round`). */
function round(a: Decimal, nd: number): Decimal {
  if (nd < 0 || nd >= a.d.length) return a;
  const c = a.d.charCodeAt(nd);
  let up = c >= 0x35;
  if (c === 0x35 && nd + 1 === a.d.length) {
    up = nd > 0 && (a.d.charCodeAt(nd - 1) - 0x30) % 2 === 1;
  }
  if (!up) return trim(a.d.slice(0, nd), a.dp);
  let i = nd - 1;
  while (i >= 0 && a.d[i] === "9") i--;
  if (i < 0) return { d: "1", dp: a.dp + 1 };
  return {
    d: a.d.slice(0, i) + String.fromCharCode(a.d.charCodeAt(i) + 1),
    dp: a.dp,
  };
}

function fmtE(neg: boolean, a: Decimal, prec: number, e: string): string {
  let out = neg ? "-" : "";
  out += a.d.length === 0 ? "0" : a.d[0];
  if (prec > 0) {
    out += "." + a.d.slice(1, prec + 1);
    const have = Math.max(Math.min(a.d.length, prec + 1) - 1, 0);
    out += "0".repeat(prec - have);
  }
  return out + e + exponent(a.d.length === 0 ? 0 : a.dp - 1);
}

/** An exponent as Go's %e and %x end: its sign, then two digits or more. */
function exponent(exp: number): string {
  const digits = Math.abs(exp);
  return (exp < 0 ? "-" : "+") + (digits < 10 ? "0" + digits : String(digits));
}

function fmtF(neg: boolean, a: Decimal, prec: number): string {
  let out = neg ? "-" : "";
  if (a.dp > 0) {
    const int = a.d.slice(0, a.dp);
    out += int + "0".repeat(a.dp - int.length);
  } else {
    out += "0";
  }
  if (prec > 0) {
    // The fraction's digits sit at a.dp, a.dp + 1, …: zeros before a.d
    // starts and after it ends.
    const lead = Math.min(Math.max(-a.dp, 0), prec);
    const start = Math.max(a.dp, 0);
    const frac = "0".repeat(lead) + a.d.slice(start, start + prec - lead);
    out += "." + frac + "0".repeat(prec - frac.length);
  }
  return out;
}

function fmtG(
  neg: boolean,
  a: Decimal,
  prec: number,
  shortest: boolean,
  e: string,
): string {
  const nd = a.d.length;
  let eprec = prec;
  if (eprec > nd && nd >= a.dp) eprec = nd;
  if (shortest) eprec = 6;
  const exp = a.dp - 1;
  if (exp < -4 || exp >= eprec) {
    return fmtE(neg, a, Math.min(prec, nd) - 1, e);
  }
  if (prec > a.dp) prec = nd;
  return fmtF(neg, a, Math.max(prec - a.dp, 0));
}

/** `%b`: decimal mantissa and binary exponent, `4503599627370496p-52`. */
function fmtB(neg: boolean, mant: bigint, exp: number): string {
  const e = exp - 52;
  return (neg ? "-" : "") + mant + "p" + (e >= 0 ? "+" : "") + e;
}

const MASK64 = (1n << 64n) - 1n;
const BIT60 = 1n << 60n;

/** `%x`: hexadecimal mantissa and binary exponent, `0x1.8p+01`. */
function fmtX(
  neg: boolean,
  m: bigint,
  exp: number,
  prec: number,
  upper: boolean,
): string {
  let mant = m << 8n;
  if (m === 0n) exp = 0;
  while (mant !== 0n && (mant & BIT60) === 0n) {
    mant <<= 1n;
    exp--;
  }
  if (prec >= 0 && prec < 15) {
    const shift = BigInt(prec * 4);
    const extra = (mant << shift) & (BIT60 - 1n);
    mant >>= 60n - shift;
    if ((extra | (mant & 1n)) > 1n << 59n) mant++;
    mant <<= 60n - shift;
    if ((mant & (1n << 61n)) !== 0n) {
      mant >>= 1n;
      exp++;
    }
  }
  const hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  let out = (neg ? "-" : "") + (upper ? "0X" : "0x") + ((mant >> 60n) & 1n);
  mant = (mant << 4n) & MASK64;
  if (prec < 0 && mant !== 0n) {
    out += ".";
    while (mant !== 0n) {
      out += hex[Number((mant >> 60n) & 15n)];
      mant = (mant << 4n) & MASK64;
    }
  } else if (prec > 0) {
    out += ".";
    let i = 0;
    for (; i < prec && mant !== 0n; i++) {
      out += hex[Number((mant >> 60n) & 15n)];
      mant = (mant << 4n) & MASK64;
    }
    out += "0".repeat(prec - i);
  }
  return out + (upper ? "P" : "p") + exponent(exp);
}

/**
 * Go's `strconv.FormatFloat(v, verb, prec, 64)`.
 *
 * @param v The float64 value.
 * @param verb One of `b e E f g G x X`.
 * @param prec Digits (after the point for `e f x`, significant for `g`), or
 *   -1 for the shortest representation that reads back as `v`.
 * @returns Go's text, `NaN`, `+Inf` and `-Inf` included.
 */
export function formatFloat(v: number, verb: string, prec: number): string {
  if (v !== v) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  if (verb === "b" || verb === "x" || verb === "X") {
    const { neg, exp, mant } = decompose(v);
    if (verb === "b") return fmtB(neg, mant, exp);
    return fmtX(neg, mant, exp, prec, verb === "X");
  }
  const neg = v < 0 || Object.is(v, -0);
  const shortest = prec < 0;
  let a: Decimal;
  if (shortest) {
    a = v === 0 ? { d: "", dp: 0 } : shortestDecimal(Math.abs(v));
    const nd = a.d.length;
    if (verb === "e" || verb === "E") prec = Math.max(nd - 1, 0);
    else if (verb === "f") prec = Math.max(nd - a.dp, 0);
    else prec = nd;
  } else {
    if ((verb === "g" || verb === "G") && prec === 0) prec = 1;
    a = roundedDecimal(Math.abs(v), verb, prec);
  }
  switch (verb) {
    case "e":
    case "E":
      return fmtE(neg, a, prec, verb);
    case "f":
      return fmtF(neg, a, prec);
    default:
      return fmtG(neg, a, prec, shortest, verb === "G" ? "E" : "e");
  }
}

/**
 * `v` (positive or zero) rounded as `%.{prec}{verb}` rounds it. The engine's
 * `toFixed` and `toExponential` round the exact value too, but an exact half
 * away from zero where Go rounds it to even, so a possible half goes through
 * the exact digits instead.
 */
function roundedDecimal(v: number, verb: string, prec: number): Decimal {
  const frac = fractionDigits(v);
  if (verb === "f") {
    if (prec <= 100 && v < 1e21 && frac !== prec + 1) {
      return parseDecimal(v.toFixed(prec));
    }
  } else {
    const digits = verb === "e" || verb === "E" ? prec + 1 : prec;
    if (digits <= 101 && !mayBeHalf(v, frac, digits)) {
      return parseDecimal(v.toExponential(digits - 1));
    }
  }
  const { exp, mant } = decompose(v);
  const a = exactDecimal(mant, exp - 52);
  if (verb === "f") return round(a, a.dp + prec);
  return round(a, verb === "e" || verb === "E" ? prec + 1 : prec);
}

/**
 * Digits after the decimal point in the exact value of `v`: the fraction
 * of a binary float ends in 5 after as many digits as it has bits.
 */
function fractionDigits(v: number): number {
  view.setFloat64(0, v);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const exp = (hi >>> 20) & 0x7ff;
  const m = (hi & 0xfffff) | (exp === 0 ? 0 : 0x100000);
  if (m === 0 && lo === 0) return 0;
  const tz = lo !== 0 ? ctz(lo) : 32 + ctz(m);
  return Math.max(0, 1075 - (exp === 0 ? 1 : exp) - tz);
}

function ctz(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/**
 * Whether rounding `v` to `digits` significant digits may meet an exact
 * half: its exact value has `digits + 1` significant digits, the last a 5.
 * Errs towards yes, which only costs the exact path.
 */
function mayBeHalf(v: number, frac: number, digits: number): boolean {
  if (v === 0) return false;
  if (frac === 0) {
    if (v >= 2 ** 53) return true;
    const s = String(v).replace(/0+$/, "");
    return s.length === digits + 1 && s.endsWith("5");
  }
  const significant = frac + Math.floor(Math.log10(v)) + 1;
  return Math.abs(significant - (digits + 1)) <= 1;
}

/** Digits of `toFixed` or `toExponential` output (no sign) as a Decimal. */
function parseDecimal(s: string): Decimal {
  const e = s.indexOf("e");
  const mantissa = e < 0 ? s : s.slice(0, e);
  const point = mantissa.indexOf(".");
  const digits = point < 0 ? mantissa : mantissa.slice(0, point) +
    mantissa.slice(point + 1);
  let dp = (point < 0 ? mantissa.length : point) +
    (e < 0 ? 0 : Number(s.slice(e + 1)));
  let start = 0;
  while (start < digits.length && digits.charCodeAt(start) === 0x30) {
    start++;
    dp--;
  }
  return trim(digits.slice(start), dp);
}

/**
 * Go's `#` flag on a formatted float (`fmt.fmtFloat`): keeps a decimal
 * point and, for `%g` and `%x`, trailing zeros up to the precision.
 *
 * @param num The formatted number, with its sign first.
 * @param verb The verb's code point.
 * @param prec The precision, -1 when none was given.
 * @returns The number with the point and zeros.
 */
export function sharpFloat(num: string, verb: number, prec: number): string {
  let digits = 0;
  if (verb === 0x67 || verb === 0x47 || verb === 0x78) {
    digits = prec === -1 ? 6 : prec;
  }
  const hexa = verb === 0x78 || verb === 0x58;
  let tail = "";
  let hasPoint = false;
  let sawNonzero = false;
  for (let i = 1; i < num.length; i++) {
    const c = num[i] as string;
    if (c === ".") {
      hasPoint = true;
    } else if (c === "p" || c === "P" || (!hexa && (c === "e" || c === "E"))) {
      tail = num.slice(i);
      num = num.slice(0, i);
      break;
    } else {
      if (c !== "0") sawNonzero = true;
      if (sawNonzero) digits--;
    }
  }
  if (!hasPoint) {
    if (num.length === 2 && num[1] === "0") digits--;
    num += ".";
  }
  if (digits > 0) num += "0".repeat(digits);
  return num + tail;
}
