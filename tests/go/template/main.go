// Command template renders templates the way go-store does, for the
// differential test tests/go/template_go_test.ts: each stdin line is a JSON
// case {"input": "...", "data": {"k": "v"}, "mode": "default"|"zero"|"error"};
// each stdout line is {"ok": bool, "out": base64 of the output bytes,
// "err": "..."}. The output is base64 because Go may write bytes that are
// not UTF-8 (slice can cut a rune), which JSON strings cannot carry.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"text/template"
)

type renderCase struct {
	Input string            `json:"input"`
	Data  map[string]string `json:"data"`
	Mode  string            `json:"mode"`
}

type result struct {
	Ok  bool   `json:"ok"`
	Out string `json:"out"`
	Err string `json:"err"`
}

// render parses and executes one case; a panic inside text/template is a
// failure, as an error is.
func render(c renderCase) (res result) {
	defer func() {
		if r := recover(); r != nil {
			res = result{Ok: false, Err: fmt.Sprint("panic: ", r)}
		}
	}()
	mode := c.Mode
	if mode == "" {
		mode = "default"
	}
	tmpl, err := template.New("render").Option("missingkey=" + mode).Parse(c.Input)
	if err != nil {
		return result{Ok: false, Err: err.Error()}
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, c.Data); err != nil {
		return result{Ok: false, Err: err.Error()}
	}
	return result{Ok: true, Out: base64.StdEncoding.EncodeToString(buf.Bytes())}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for in.Scan() {
		var c renderCase
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := enc.Encode(render(c)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
