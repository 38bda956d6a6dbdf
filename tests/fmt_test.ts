/**
 * One line per case: what Go's fmt prints, recorded from Go (the differential
 * test tests/go/fmt_go_test.ts checks the same module against Go itself).
 */

import assert from "node:assert/strict";
import {
  GoComplex,
  GoUint8,
  sprint,
  sprintf,
  sprintln,
} from "../src/template/_fmt.ts";

const u8 = (n: number) => new GoUint8(n);
const cx = (real: number, imag: number) => new GoComplex(real, imag);
const M = new Map([["b", "2"], ["a", "1"]]);
const E = new Map<string, string>();

type Row = [
  "printf" | "print" | "println",
  string,
  Parameters<typeof sprint>[0],
  string,
];

const ROWS: Row[] = [
  [
    "printf",
    "%v %v %v %v %v",
    ["hi", 42n, 1.5, true, null],
    "hi 42 1.5 true <nil>",
  ],
  [
    "printf",
    "%d|%5d|%-5d|%05d|%+d|% d",
    [42n, 42n, 42n, -42n, 42n, 42n],
    "42|   42|42   |-0042|+42| 42",
  ],
  [
    "printf",
    "%.3d|%8.3d|%08.3d|%.0d|%5.0d|",
    [7n, -7n, 7n, 0n, 0n],
    "007|    -007|     007||     |",
  ],
  ["printf", "%b %o %O %x %X %#b %#o %#x %#X", [
    10n,
    10n,
    10n,
    255n,
    255n,
    10n,
    10n,
    255n,
    255n,
  ], "1010 12 0o12 ff FF 0b1010 012 0xff 0XFF"],
  ["printf", "%x %d %v", [
    -9223372036854775808n,
    -9223372036854775808n,
    9223372036854775807n,
  ], "-8000000000000000 -9223372036854775808 9223372036854775807"],
  ["printf", "%c %c %c %c %q %+q %q", [
    65n,
    0x4e16n,
    -1n,
    0x110000n,
    39n,
    0x4e16n,
    7n,
  ], "A 世 � � '\\'' '\\u4e16' '\\a'"],
  [
    "printf",
    "%U %#U %.6U %#U %U",
    [0x41n, 0x4e16n, 0x41n, 0x7fn, -1n],
    "U+0041 U+4E16 '世' U+000041 U+007F U+FFFFFFFFFFFFFFFF",
  ],
  [
    "printf",
    "%s|%q|%v|%x|%X|% x|%#x|%# X",
    ["héllo", "héllo", "héllo", "héllo", "héllo", "héllo", "héllo", "héllo"],
    'héllo|"héllo"|héllo|68c3a96c6c6f|68C3A96C6C6F|68 c3 a9 6c 6c 6f|0x68c3a96c6c6f|0X68 0XC3 0XA9 0X6C 0X6C 0X6F',
  ],
  ["printf", "%5s|%-5s|%.2s|%5.1s|%05s|%.0s|", [
    "世界",
    "😀",
    "héllo",
    "世界",
    "ab",
    "ab",
  ], "   世界|😀    |hé|    世|000ab||"],
  ["printf", "%q %+q %#q %#q %#+q", [
    'a"b\n\u00e9\u0001',
    "é😀",
    "back`tick",
    "plain",
    "é",
  ], '"a\\"b\\né\\x01" "\\u00e9\\U0001f600" "back`tick" `plain` `é`'],
  [
    "printf",
    "%q",
    ["\u0000\u0007\b\f\n\r\t\v\u001b\u007f\u00ad\u00a0\ufeff\u200b\u{10ffff}\\"],
    '"\\x00\\a\\b\\f\\n\\r\\t\\v\\x1b\\x7f\\u00ad\\u00a0\\ufeff\\u200b\\U0010ffff\\\\"',
  ],
  [
    "printf",
    "%#q %#q %#q",
    ["tab\tok", "nl\nno", "\ufeffbom"],
    '`tab\tok` "nl\\nno" "\\ufeffbom"',
  ],
  [
    "printf",
    "%t %v %5t|%-6t|",
    [true, false, true, false],
    "true false  true|false |",
  ],
  ["printf", "%e %E %f %F %g %G", [
    1234.5678,
    1234.5678,
    1234.5678,
    1234.5678,
    1234.5678,
    1e-7,
  ], "1.234568e+03 1.234568E+03 1234.567800 1234.567800 1234.5678 1E-07"],
  ["printf", "%v %v %v %v %v %v %v", [
    1e6,
    123456.0,
    1e21,
    1e20,
    0.0001,
    0.00001,
    100.0,
  ], "1e+06 123456 1e+21 1e+20 0.0001 1e-05 100"],
  [
    "printf",
    "%v %v %v %v %v %v",
    [1 / 3, 0.1 + 0.2, 5e-324, 1.7976931348623157e308, -0, 2.5],
    "0.3333333333333333 0.30000000000000004 5e-324 1.7976931348623157e+308 -0 2.5",
  ],
  ["printf", "%v %v %v %+v % v %5v|%-5v|%05v", [
    NaN,
    Infinity,
    -Infinity,
    NaN,
    Infinity,
    NaN,
    Infinity,
    -Infinity,
  ], "NaN +Inf -Inf NaN  Inf   NaN|+Inf | -Inf"],
  ["printf", "%+.2f % .2f %08.2f %-8.2f| %+08.2f", [
    3.14159,
    3.14159,
    -3.14159,
    3.14159,
    3.14159,
  ], "+3.14  3.14 -0003.14 3.14    | +0003.14"],
  ["printf", "%.0f %.0f %.0f %.1f %.2f %.1f", [
    0.5,
    1.5,
    2.5,
    0.05,
    1.005,
    0.25,
  ], "0 2 2 0.1 1.00 0.2"],
  ["printf", "%.3e %.0e %#.0e %.3g %.10g %g", [
    0,
    15,
    15,
    1234567.0,
    1234567.0,
    1e100,
  ], "0.000e+00 2e+01 2.e+01 1.23e+06 1234567 1e+100"],
  [
    "printf",
    "%#g %#.3g %#v %#f %#.0f",
    [1.0, 1.0, 1.0, 1.0, 2.5],
    "1.00000 1.00 1 1.000000 2.",
  ],
  [
    "printf",
    "%x %X %.3x %#x %#.1x %b",
    [1.0, -3.5, 1 / 3, 1.0, 1.0, 1.0],
    "0x1p+00 -0X1.CP+01 0x1.555p-02 0x1.0000p+00 0x1.0p+00 4503599627370496p-52",
  ],
  ["printf", "%.30f", [0.1], "0.100000000000000005551115123126"],
  [
    "printf",
    "%f",
    [1e300],
    "1000000000000000052504760255204420248704468581108159154915854115511802457988908195786371375080447864043704443832883878176942523235360430575644792184786706982848387200926575803737830233794788090059368953234970799945081119038967640880074652742780142494579258788820056842838115669472196386865459400540160.000000",
  ],
  [
    "printf",
    "%v %.2f %+v %e %x",
    [cx(1, -2), cx(1.5, 2), cx(-1, 0), cx(0, 0), cx(3, 0.5)],
    "(1-2i) (1.50+2.00i) (-1+0i) (0.000000e+00+0.000000e+00i) (0x1.8p+01+0x1p-01i)",
  ],
  ["printf", "%T %T %T %T %T %T %T %T", [
    "s",
    1n,
    1.5,
    true,
    u8(1),
    cx(1, 1),
    M,
    null,
  ], "string int float64 bool uint8 complex128 map[string]string <nil>"],
  ["printf", "%.3T|%8T|%-8T|", ["x", 1n, null], "str|     int|<nil>   |"],
  ["printf", "%v %d %x %#v %c %q %U %08b", [
    u8(97),
    u8(97),
    u8(97),
    u8(97),
    u8(97),
    u8(97),
    u8(97),
    u8(5),
  ], "97 97 61 0x61 a 'a' U+0061 00000101"],
  [
    "printf",
    "%v|%s|%q|%x|%5v|%#v|%+v",
    [M, M, M, M, M, M, M],
    'map[a:1 b:2]|map[a:1 b:2]|map["a":"1" "b":"2"]|map[61:31 62:32]|map[    a:    1     b:    2]|map[string]string{"a":"1", "b":"2"}|map[a:1 b:2]',
  ],
  ["printf", "%v %#v %d", [E, E, E], "map[] map[string]string{} map[]"],
  [
    "printf",
    "%d",
    [M],
    "map[%!d(string=a):%!d(string=1) %!d(string=b):%!d(string=2)]",
  ],
  ["printf", "%v", [
    new Map([["é", "1"], ["z", "2"], ["\ue000", "3"], ["😀", "4"], ["Z", "5"]]),
  ], "map[Z:5 z:2 é:1 :3 😀:4]"],
  [
    "printf",
    "%d %s %t %c %x",
    ["hi", 5n, "x", 1.5, true],
    "%!d(string=hi) %!s(int=5) %!t(string=x) %!c(float64=1.5) %!x(bool=true)",
  ],
  [
    "printf",
    "%5d|%-5d|%.1d|%#d|%+d",
    ["hi", "hi", "hi", 1.5, 1.5],
    "%!d(string=   hi)|%!d(string=hi   )|%!d(string=h)|%!d(float64=1.50000)|%!d(float64=+1.5)",
  ],
  [
    "printf",
    "%d %s %v %T %p",
    [null, null, null, null, null],
    "%!d(<nil>) %!s(<nil>) <nil> <nil> %!p(<nil>)",
  ],
  [
    "printf",
    "%p %p %p",
    ["x", 1n, true],
    "%!p(string=x) %!p(int=1) %!p(bool=true)",
  ],
  ["printf", "%z %!", [1n, 2n], "%!z(int=1) %!!(int=2)"],
  ["printf", "%w %5w", ["x", "x"], "%!w(string=x) %!w(string=    x)"],
  ["printf", "%w", [M], "%!w(map[string]string=map[a:1 b:2])"],
  // Go 1.20 and later (not Debian's 1.19) move # and + aside for %w as for %v.
  ["printf", "%#w %+w", ["x", 1.5], '%!w(string="x") %!w(float64=1.5)'],
  ["printf", "%d", [], "%!d(MISSING)"],
  ["printf", "%d %s", [1n], "1 %!s(MISSING)"],
  [
    "printf",
    "%d",
    [1n, "x", null, 2.5],
    "1%!(EXTRA string=x, <nil>, float64=2.5)",
  ],
  [
    "printf",
    "no verbs",
    [M, u8(3)],
    "no verbs%!(EXTRA map[string]string=map[a:1 b:2], uint8=3)",
  ],
  ["printf", "%[2]d %[1]d", [1n, 2n], "2 1"],
  ["printf", "%[2]d %d %[1]d %d", [1n, 2n, 3n], "2 3 1 2"],
  ["printf", "%[3]*.[2]*[1]f", [12.0, 2n, 6n], " 12.00"],
  [
    "printf",
    "%[5]d %[0]d %[x]d %[1]d",
    [1n],
    "%!d(BADINDEX) %!d(BADINDEX) %!d(BADINDEX) 1",
  ],
  ["printf", "%[3]2d|%[3].2d|", [1n, 2n, 3n], "%!d(BADINDEX)|%!d(BADINDEX)|"],
  ["printf", "%[1", [1n], "%!(NOVERB)"],
  [
    "printf",
    "%*d|%-*d|%*d|%.*f",
    [5n, 1n, 5n, 1n, -5n, 1n, 2n, 3.14159],
    "    1|1    |1    |3.14",
  ],
  [
    "printf",
    "%*d|%.*d|%*d",
    ["x", 1n, -1n, 1n, 10000000n, 1n],
    "%!(BADWIDTH)1|%!(BADPREC)1|%!(BADWIDTH)1",
  ],
  ["printf", "%*d", [u8(4), 1n], "   1"],
  ["printf", "%", [], "%!(NOVERB)"],
  ["printf", "%5", [1n], "%!(NOVERB)%!(EXTRA int=1)"],
  ["printf", "%-+", [1n], "%!(NOVERB)%!(EXTRA int=1)"],
  ["printf", "%5.", [1n], "%!.(int=    1)"],
  ["printf", "%%|%5%|%-5%|%d%%", [7n], "%|%|%|7%"],
  ["printf", "%é|%😀", [1n, 2n], "%!é(int=1)|%!😀(int=2)"],
  ["printf", "%100000001d", [1n], "%!(NOVERB)%!(EXTRA int=1)"],
  ["printf", "100%% %s", ["sure"], "100% sure"],
  [
    "print",
    "",
    ["a", "b", 1n, 2n, "c", 3.5, true, null, M],
    "ab1 2c3.5 true <nil> map[a:1 b:2]",
  ],
  ["print", "", [1n, 2n], "1 2"],
  ["print", "", ["a", 1n, "b"], "a1b"],
  ["print", "", [null, null], "<nil> <nil>"],
  ["print", "", [], ""],
  [
    "println",
    "",
    ["a", "b", 1n, null, M, 1e21],
    "a b 1 <nil> map[a:1 b:2] 1e+21\n",
  ],
  ["println", "", [], "\n"],
  // Lone surrogates (which the store refuses) read as U+FFFD, as Go decodes
  // the bytes they become.
  ["printf", "%s|%q|%+q|%x|%5s|%.1s|", [
    "a\ud800b",
    "\ud800",
    "\udc00",
    "\udc00",
    "\ud800",
    "\ud800\ud800",
  ], 'a\ufffdb|"\ufffd"|"\\ufffd"|efbfbd|    \ufffd|\ufffd|'],
  [
    "printf",
    "%c %q %U %#U",
    [0xd800n, 0xdfffn, 0xd800n, 0xd800n],
    "\ufffd '\ufffd' U+D800 U+D800",
  ],
  ["print", "", ["\ud800", 1n], "\ufffd1"],
  [
    "printf",
    "%v",
    [new Map([["\ud800", "x"], ["\uffff", "y"]])],
    "map[\ufffd:x \uffff:y]",
  ],
];

Deno.test("sprintf, sprint and sprintln print what Go's fmt prints", async (t) => {
  for (const [fn, format, args, expected] of ROWS) {
    const name = fn === "printf"
      ? `Sprintf(${JSON.stringify(format)}) → ${JSON.stringify(expected)}`
      : `S${fn} of ${args.length} operands → ${JSON.stringify(expected)}`;
    await t.step(name, () => {
      const actual = fn === "printf"
        ? sprintf(format, args)
        : fn === "print"
        ? sprint(args)
        : sprintln(args);
      assert.equal(actual, expected);
    });
  }
});

Deno.test("sprintf accepts widths up to ten million runes, as Go's parsenum does", () => {
  // Go refuses a number only when the digits before the last exceed 1e6.
  assert.equal(sprintf("%10000009d", [1n]).length, 10_000_009);
  assert.equal(sprintf("%10000010d", [1n]), "%!(NOVERB)%!(EXTRA int=1)");
  assert.equal(sprintf("%.10000010d", [1n]), "%!(NOVERB)%!(EXTRA int=1)");
});

Deno.test("sprintf fills the largest precisions without work per digit", () => {
  // Ten million digits each: a loop per digit would take seconds here.
  assert.equal(sprintf("%.10000009f", [1 / 3]).length, 10_000_011);
  assert.equal(sprintf("%.10000009x", [1 / 3]).length, 10_000_017);
  assert.equal(sprintf("%.10000009e", [1 / 3]).length, 10_000_015);
  assert.equal(sprintf("%.10000009d", [5n]).length, 10_000_009);
});

Deno.test("sprintf, sprint and sprintln stop at maxLength with a RangeError", () => {
  const wide = new Map(Array.from({ length: 1000 }, (_, i) => [`k${i}`, "v"]));
  assert.throws(
    () => sprintf("%10000000v", [wide], 50_000_000),
    RangeError,
  );
  assert.throws(() => sprint(["x".repeat(11)], 10), RangeError);
  assert.throws(() => sprintln([1n, 2n, 3n], 3), RangeError);
  assert.equal(sprintf("%5d", [1n], 5), "    1");
});
