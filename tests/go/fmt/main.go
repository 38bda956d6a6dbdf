// Command fmt reads formatting cases as JSON on stdin and prints what Go's
// fmt.Sprintf, fmt.Sprint and fmt.Sprintln make of each, as a JSON array of
// strings, for the differential test tests/go/fmt_go_test.ts.
//
// A case is {"fn": "printf"|"print"|"println", "format": "...", "args": [...]}
// and an argument is {"t": type, "v": value}: "string", "int" (decimal text),
// "float64" (text strconv.ParseFloat reads), "bool", "uint8", "complex128"
// ("v" is [real, imag] as float text), "map" ("v" is [[key, value], ...]) or
// "nil".
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
)

type arg struct {
	T string          `json:"t"`
	V json.RawMessage `json:"v"`
}

type fmtCase struct {
	Fn     string `json:"fn"`
	Format string `json:"format"`
	Args   []arg  `json:"args"`
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func parseFloat(raw json.RawMessage) float64 {
	var s string
	must(json.Unmarshal(raw, &s))
	f, err := strconv.ParseFloat(s, 64)
	must(err)
	return f
}

func value(a arg) any {
	switch a.T {
	case "nil":
		return nil
	case "string":
		var s string
		must(json.Unmarshal(a.V, &s))
		return s
	case "bool":
		var b bool
		must(json.Unmarshal(a.V, &b))
		return b
	case "int":
		var s string
		must(json.Unmarshal(a.V, &s))
		n, err := strconv.ParseInt(s, 10, 64)
		must(err)
		return int(n)
	case "uint8":
		var n uint8
		must(json.Unmarshal(a.V, &n))
		return n
	case "float64":
		return parseFloat(a.V)
	case "complex128":
		var parts []json.RawMessage
		must(json.Unmarshal(a.V, &parts))
		return complex(parseFloat(parts[0]), parseFloat(parts[1]))
	case "map":
		var pairs [][2]string
		must(json.Unmarshal(a.V, &pairs))
		m := make(map[string]string, len(pairs))
		for _, p := range pairs {
			m[p[0]] = p[1]
		}
		return m
	}
	must(fmt.Errorf("unknown argument type %q", a.T))
	return nil
}

func main() {
	var cases []fmtCase
	must(json.NewDecoder(bufio.NewReader(os.Stdin)).Decode(&cases))
	out := make([]string, len(cases))
	for i, c := range cases {
		args := make([]any, len(c.Args))
		for j, a := range c.Args {
			args[j] = value(a)
		}
		switch c.Fn {
		case "printf":
			out[i] = fmt.Sprintf(c.Format, args...)
		case "print":
			out[i] = fmt.Sprint(args...)
		case "println":
			out[i] = fmt.Sprintln(args...)
		default:
			must(fmt.Errorf("unknown function %q", c.Fn))
		}
	}
	w := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	must(enc.Encode(out))
	must(w.Flush())
}
